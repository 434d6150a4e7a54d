"""One-launch mixed 4/8-bit GEMM kernel in Triton (CUDA only; imports ``triton``).

Do not import this module directly: :mod:`gpu_ref.triton_mixed` imports it on first use,
after checking that CUDA and Triton are present.

The K axis is walked in blocks of ``G`` columns (one 4-bit group per block). Block ``kb``
is 4-bit when ``kb * G < max4`` — ``max4`` is read from device memory, so changing the
ratio is a 4-byte write and never recompiles. A 4-bit block lowers its int8/uint8 codes
in registers (round-half-even shift, clamp), multiplies them with the pre-lowered weights
``w4`` (values in [-8, 7], or pre-shifted ones for per-weight shifts) on int8 Tensor Cores,
and adds the int32 partial sum shifted by ``e_x[m, kb] + e_w[n, kb]``. An 8-bit block
multiplies the codes directly; unsigned codes are offset by -128 and the correction
``128 * sum_k w8[k, n]`` is added at the end. Accumulation is int32, as on the NPU.
"""

import triton
import triton.language as tl


@triton.jit
def mixed_gemm_kernel(x_ptr, w8_ptr, w4_ptr, ex_ptr, ew_ptr, max4_ptr, out_ptr,
                      M, N, K,
                      stride_xm, stride_xk, stride_wk, stride_wn,
                      stride_exm, stride_exg, stride_ewn, stride_ewg,
                      stride_om, stride_on,
                      X_UNSIGNED: tl.constexpr, LO4: tl.constexpr, HI4: tl.constexpr,
                      G: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, G)
    m_ok = rm < M
    n_ok = rn < N
    max4 = tl.load(max4_ptr)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    wsum = tl.zeros((BLOCK_N,), dtype=tl.int32)
    for kb in range(0, tl.cdiv(K, G)):
        kk = kb * G + rk
        k_ok = kk < K
        x = tl.load(x_ptr + rm[:, None] * stride_xm + kk[None, :] * stride_xk,
                    mask=m_ok[:, None] & k_ok[None, :], other=0).to(tl.int32)
        w_off = kk[:, None] * stride_wk + rn[None, :] * stride_wn
        w_mask = k_ok[:, None] & n_ok[None, :]
        if kb * G < max4:
            e = tl.load(ex_ptr + rm * stride_exm + kb * stride_exg, mask=m_ok, other=0)[:, None]
            q = x >> e  # arithmetic shift: floor division by 2**e
            r = x - (q << e)
            half = (1 << e) >> 1
            up = (r > half) | ((r == half) & ((q & 1) == 1) & (e > 0))
            x4 = tl.minimum(tl.maximum(q + up.to(tl.int32), LO4), HI4)
            w4 = tl.load(w4_ptr + w_off, mask=w_mask, other=0)
            part = tl.dot(x4.to(tl.int8), w4, out_dtype=tl.int32)
            ew = tl.load(ew_ptr + rn * stride_ewn + kb * stride_ewg, mask=n_ok, other=0)
            acc += part << (e + ew[None, :])
        else:
            w8 = tl.load(w8_ptr + w_off, mask=w_mask, other=0)
            if X_UNSIGNED:
                acc += tl.dot((x - 128).to(tl.int8), w8, out_dtype=tl.int32)
                wsum += tl.sum(w8.to(tl.int32), axis=0)
            else:
                acc += tl.dot(x.to(tl.int8), w8, out_dtype=tl.int32)
    if X_UNSIGNED:
        acc += 128 * wsum[None, :]
    tl.store(out_ptr + rm[:, None] * stride_om + rn[None, :] * stride_on, acc,
             mask=m_ok[:, None] & n_ok[None, :])
