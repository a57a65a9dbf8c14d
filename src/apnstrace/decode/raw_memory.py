"""Memory operations numba does not offer, for the compiled scans over a chunk's payloads:

- `prefetch(arr, i)`: ask for the cache line holding arr[i] (a hint, never a fault). The
  payloads a scan reads lie scattered over a 32 MB chunk; asking for the one a few rows on
  while this one is read overlaps the cache misses (scan_tls 8-9 -> 3-3.5 ms on engine_2m).
- `load_u64(arr, i)`: arr[i:i + 8] (a 1-d uint8 array) as one uint64 in the machine's byte
  order, an unaligned load (a uint64 view of the bytes inside a kernel assumes alignment).
- `word_at(address, i)` / `byte_at(address, i)`: the same by the buffer's address
  (`buf.ctypes.data`), for helpers called per header line: an array argument costs an atomic
  reference count taken and dropped per call.

Each is inlined into the kernel calling it when that kernel compiles. numba's on-disk cache
tracks only the calling kernel's own source file: after editing this one, delete the
`__pycache__/*.nbi` / `*.nbc` files, or cached callers keep the old code.
Without numba the same names work in plain Python (slowly), as the kernels' fallbacks do.
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np

__all__ = ["LITTLE", "byte_at", "load_u64", "prefetch", "word_at"]

LITTLE = sys.byteorder == "little"

try:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only on machines without numba
    intrinsic = None


if intrinsic is not None:
    @intrinsic
    def prefetch(typingctx, arr, index):
        """Ask for arr[index]'s cache line (llvm.prefetch: read, keep in all levels, data)."""
        def codegen(context, builder, signature, args):
            array_type = signature.args[0]
            array = context.make_array(array_type)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]], wraparound=False)
            if getattr(ptr.type, "is_opaque", False):
                name = "llvm.prefetch.p0"
            else:                               # LLVM with typed pointers (older llvmlite)
                ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
                name = "llvm.prefetch.p0i8"
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
                                                name)
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()
        return types.void(arr, index), codegen

    @intrinsic
    def load_u64(typingctx, arr, index):
        """arr[index:index + 8] as one uint64, machine byte order (align 1). A 1-d C-contiguous
        uint8 array only: the pointer arithmetic ignores strides. No bounds check."""
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype == types.uint8):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            at = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
            return builder.load(at, align=1)
        return types.uint64(arr, types.int64), codegen

    @intrinsic
    def word_at(typingctx, address, index):
        """The 8 bytes at address + index as one uint64, machine byte order (align 1)."""
        def codegen(context, builder, signature, args):
            ptr = builder.inttoptr(builder.add(args[0], args[1]), ir.IntType(64).as_pointer())
            return builder.load(ptr, align=1)
        return types.uint64(address, index), codegen

    @intrinsic
    def byte_at(typingctx, address, index):
        """The byte at address + index."""
        def codegen(context, builder, signature, args):
            return builder.load(builder.inttoptr(builder.add(args[0], args[1]), ir.IntType(8).as_pointer()))
        return types.uint8(address, index), codegen
else:  # pragma: no cover - exercised only on machines without numba
    def prefetch(arr, index) -> None:
        pass

    def load_u64(arr, index):
        return np.uint64(int.from_bytes(bytes(arr[index: index + 8]), sys.byteorder))

    def word_at(address, index):
        return np.uint64(ctypes.c_uint64.from_address(address + index).value)

    def byte_at(address, index):
        return ctypes.c_uint8.from_address(address + index).value
