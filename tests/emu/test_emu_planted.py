"""Planted bugs (tests/emu/planted.cu) prove that the emulation catches each kind of kernel bug: by a
wrong answer (shared memory is poisoned with NaN, the schedule lets some warps run ahead) or by a
KernelError naming the kernel, the block and the thread. None of them may hang or pass silently.

The races are also pinpointed by ThreadSanitizer (test_emu_sanitizers.py), which is why they are not run
in the sanitizer flavours here.
"""

import numpy as np
import pytest

from emulation import FLAVOUR, nan_like

racy = pytest.mark.skipif(FLAVOUR != "plain", reason="a planted race: test_emu_sanitizers.py runs it under TSan")


def rows_and_sums(seed=0, rows=3, n=300):
    x = np.random.default_rng(seed).standard_normal((rows, n)).astype(np.float32) + 0.5
    return x, np.stack([x.sum(1), (x * x).sum(1)], 1)


def two_sums(emu, x, variant):
    sums = nan_like((x.shape[0], 2))
    emu.planted_two_sums_cuda(x, sums, x.shape[0], x.shape[1], variant, None)
    return sums


def test_correct_reduction_passes_in_both_orders(emu, order):
    x, expected = rows_and_sums()
    np.testing.assert_allclose(two_sums(emu, x, 0), expected, rtol=1e-5)


@racy
@pytest.mark.parametrize("variant", [1, 2], ids=["no-barrier-before-read", "no-barrier-after-read"])
def test_missing_syncthreads_gives_a_wrong_answer(emu, variant):
    """Variant 1 reads the scratch before the other warps wrote it (NaN poison, when the lowest warps run
    first); variant 2 lets the second reduction overwrite the scratch the first is still reading (when
    the highest warps run first). Each is wrong in at least one of the two orders."""
    x, expected = rows_and_sums()
    wrong = []
    for order in ("lowest", "highest"):
        emu.set_order(order)
        try:
            wrong.append(not np.allclose(two_sums(emu, x, variant), expected, rtol=1e-5))
        finally:
            emu.set_order("lowest")
    assert any(wrong), "a missing __syncthreads went unnoticed in both thread orders"


@pytest.mark.skipif(FLAVOUR == "asan", reason="AddressSanitizer reports it instead (test_emu_sanitizers.py)")
def test_off_by_one_write_is_reported(emu):
    x = np.arange(1, 101, dtype=np.float32)
    with pytest.raises(emu.KernelError, match=r"wrote outside pointer argument 1 .*100 elements.*at element 100"):
        emu.planted_off_by_one_cuda(x, nan_like(100), 100, 1, None)
    y = nan_like(100)
    emu.planted_off_by_one_cuda(x, y, 100, 0, None)  # the correct variant passes the same check
    np.testing.assert_array_equal(y, 2 * x)


def test_return_before_barrier_is_reported_not_hung(emu):
    x = np.ones(64, np.float32)
    with pytest.raises(emu.KernelError, match=r"return_before_barrier_kernel.*block \(0,0,0\) thread \(40,0,0\): "
                                              r"returned while 32 thread\(s\) wait at __syncthreads\(\)"):
        emu.planted_return_before_barrier_cuda(x, nan_like(1), 40, None)


def test_partial_mask_is_reported(emu):
    x = np.arange(32, dtype=np.float32)
    with pytest.raises(emu.KernelError, match=r"partial_mask_kernel.*__shfl_xor_sync\(0x0000ffff.*not the full mask"):
        emu.planted_partial_mask_cuda(x, nan_like(32), 1, None)


def test_shuffle_reached_by_half_a_warp_is_reported(emu):
    x = np.arange(32, dtype=np.float32)
    with pytest.raises(emu.KernelError, match=r"thread \(16,0,0\): returned while lanes of its warp wait for it"):
        emu.planted_partial_mask_cuda(x, nan_like(32), 2, None)


def test_divergent_barriers_are_reported(emu):
    with pytest.raises(emu.KernelError, match=r"divergent_kernel.*divergent barriers: at __syncthreads\(\) .*planted.cu"):
        emu.planted_divergent_cuda(nan_like(64), 1, None)


def test_deadlock_is_reported_not_hung(emu):
    """Half a warp at a shuffle waits for lanes that wait at a barrier for it: nobody can proceed."""
    with pytest.raises(emu.KernelError, match=r"deadlock, no thread can proceed: 48 thread\(s\) at __syncthreads\(\)"
                                              r".*warp 0: 16 lane\(s\) at __shfl_xor_sync"):
        emu.planted_divergent_cuda(nan_like(64), 2, None)


def test_block_size_not_whole_warps_is_reported(emu):
    with pytest.raises(emu.KernelError, match=r"iota_kernel.*a block of 48 threads is not a multiple of 32"):
        emu.planted_block_size_cuda(nan_like(100), 100, 48, None)


def test_invalid_launch_configuration_reaches_check_launch(emu):
    """As on a GPU: the launch does not run, cudaGetLastError says why, the launcher raises."""
    with pytest.raises(RuntimeError, match=r"iota_kernel: invalid configuration argument"):
        emu.planted_block_size_cuda(nan_like(100), 100, 2048, None)
    out = nan_like(100)
    emu.planted_block_size_cuda(out, 100, 64, None)
    np.testing.assert_array_equal(out, np.arange(100, dtype=np.float32))


def test_full_mask_warp_sum(emu):
    x = np.arange(32, dtype=np.float32)
    out = nan_like(32)
    emu.planted_partial_mask_cuda(x, out, 0, None)
    np.testing.assert_array_equal(out, np.full(32, x.sum(), np.float32))


def test_shared_memory_is_poisoned_before_every_block(emu):
    """Both blocks read static and dynamic shared memory before writing it: NaN in each, although the
    first block wrote 1.0 into both before the second ran."""
    static, dynamic = np.zeros(128, np.float32), np.zeros(128, np.float32)
    emu.planted_dynamic_shared_cuda(static, dynamic, 1, None)
    assert np.isnan(static).all() and np.isnan(dynamic).all()


@pytest.mark.skipif(FLAVOUR == "asan", reason="AddressSanitizer reports it instead (test_emu_sanitizers.py)")
def test_dynamic_shared_memory_overflow_is_reported(emu):
    with pytest.raises(emu.KernelError, match=r"dynamic_shared_kernel.*block \(0,0,0\).*beyond the launch's 256 bytes"):
        emu.planted_dynamic_shared_cuda(nan_like(128), nan_like(128), 2, None)
