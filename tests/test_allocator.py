"""The malloc tuning of pyddpm.ops.allocator: a training step stops page-faulting its temporaries in anew."""

import os
import subprocess
import sys

import pytest

from pyddpm.ops import allocator

STEP_FAULTS = """
import resource, tempfile
from pyddpm.train import Trainer, preset_config
trainer = Trainer(preset_config("digits", out=tempfile.mkdtemp(), backend="numpy", batch_size=8), log=lambda *_: None)
trainer.train_step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
trainer.train_step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_per_step(malloc_setting):
    env = dict(os.environ, PYDDPM_MALLOC=malloc_setting)
    done = subprocess.run([sys.executable, "-c", STEP_FAULTS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not allocator.TUNED, reason="not glibc: there is no malloc threshold to tune")
def test_tuned_malloc_reuses_the_memory_of_the_last_step():
    default, tuned = faults_per_step("default"), faults_per_step("tuned")
    assert tuned * 5 < default, f"{tuned} minor page faults per step with the tuning, {default} without"
