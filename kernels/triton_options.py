"""Compile options every Triton kernel here is launched with, stated rather than left to Triton's defaults.

FP_FUSION: let the compiler fuse a multiply and an add into one FMA. It is Triton's default up to 3.9, which warns
that 3.10 turns it off; our kernels were written, checked and tuned with it on (one rounding instead of two, and
faster), so a Triton upgrade must not change their arithmetic silently.
"""
FP_FUSION = True
