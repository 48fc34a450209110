"""The malloc tuning of pyddpm.ops.allocator: a training step stops page-faulting its temporaries in anew."""

import os
import subprocess
import sys

import pytest

from pyddpm.ops import allocator

# Minor page faults over six steps after two of warm-up. glibc adapts its own mmap threshold as large
# chunks are freed, so without the tuning some steps fault little and others thousands of times (1 to
# 5,500 each here); a single step is not a fair sample of either setting.
STEP_FAULTS = """
import resource, tempfile
from pyddpm.train import Trainer, preset_config
trainer = Trainer(preset_config("digits", out=tempfile.mkdtemp(), backend="numpy", batch_size=8), log=lambda *_: None)
trainer.train_step()
trainer.train_step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    trainer.train_step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_per_step(malloc_setting):
    env = dict(os.environ, PYDDPM_MALLOC=malloc_setting)
    done = subprocess.run([sys.executable, "-c", STEP_FAULTS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not allocator.AVAILABLE, reason="not glibc: there is no malloc threshold to tune")
def test_tuned_malloc_reuses_the_memory_of_the_last_step():
    default, tuned = faults_per_step("default"), faults_per_step("tuned")
    assert tuned * 5 < default, f"{tuned} minor page faults in six steps with the tuning, {default} without"
