"""The standard FID and Inception Score through torch-fidelity, where a user has it and its weights.

Not a dependency: pyddpm's own metrics (pyddpm.metrics) need no download. ``--fid inception`` on
``python -m pyddpm.evaluate`` uses this module only when torch-fidelity is installed and the Inception
weights it uses are already on the machine (torch's hub cache); otherwise it says which is missing. The
numbers are comparable with published FIDs on natural images (CIFAR-10 and the like); grey images are
repeated into three channels, which the Inception network expects, so their FID is not a published kind.
"""

from pathlib import Path

import numpy as np

WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # the file torch-fidelity downloads on first use


def requirements():
    """(torch, torch_fidelity) if both import and the weights are present; ValueError saying what is missing."""
    try:
        import torch
        import torch_fidelity
    except ImportError as e:
        raise ValueError(f"--fid inception needs torch-fidelity (pip install torch-fidelity), which is not "
                         f"installed ({e})") from None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS
    if not weights.is_file():
        raise ValueError(f"--fid inception: the Inception weights are not on this machine ({weights}); "
                         f"torch-fidelity downloads them on first use where there is a network")
    return torch, torch_fidelity


def inception_scores(samples, real):
    """{"inception_fid", "inception_score", "inception_score_std"} of uint8 samples (N, C, H, W) against uint8
    real images (M, C, H, W), through torch-fidelity on the GPU if torch sees one."""
    torch, torch_fidelity = requirements()

    class Images(torch.utils.data.Dataset):
        def __init__(self, images):
            self.images = images if images.shape[1] == 3 else np.repeat(images, 3, axis=1)

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            return torch.from_numpy(np.ascontiguousarray(self.images[i]))

    m = torch_fidelity.calculate_metrics(input1=Images(samples), input2=Images(real), fid=True, isc=True,
                                         cuda=torch.cuda.is_available(), verbose=False)
    return {"inception_fid": float(m["frechet_inception_distance"]),
            "inception_score": float(m["inception_score_mean"]),
            "inception_score_std": float(m["inception_score_std"])}
