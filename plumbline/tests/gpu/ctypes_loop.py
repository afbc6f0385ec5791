"""CUDA runtime and NCCL calls from Python through ctypes, the way a framework
loads the NVIDIA wheels' libraries: after start, from site-packages.

    python ctypes_loop.py

Prints one JSON line with its pid and the libraries it loaded, then repeats a
small step (cudaSetDevice(1), cudaMalloc of 8 KiB, an 2 KiB device-to-host
cudaMemcpy, an ncclAllReduce of 512 floats on a NULL communicator) until its
standard input closes, waiting up to 50 ms on it between steps.
"""

import ctypes
import importlib.util
import json
import os
import select
import sys


def library(package, name):
    directory = importlib.util.find_spec(package).submodule_search_locations[0]
    return os.path.join(directory, "lib", name)


def main():
    paths = [library("nvidia.cuda_runtime", "libcudart.so.12"), library("nvidia.nccl", "libnccl.so.2")]
    cudart, nccl = (ctypes.CDLL(path) for path in paths)
    print(json.dumps({"pid": os.getpid(), "libraries": paths}), flush=True)
    buffer = (ctypes.c_float * 512)()
    device = ctypes.c_void_p()
    while True:
        cudart.cudaSetDevice(1)
        cudart.cudaMalloc(ctypes.byref(device), ctypes.c_size_t(8192))
        # 2: cudaMemcpyDeviceToHost.
        cudart.cudaMemcpy(buffer, device, ctypes.c_size_t(2048), 2)
        # 7: ncclFloat32, 0: ncclSum.
        nccl.ncclAllReduce(buffer, buffer, ctypes.c_size_t(512), 7, 0, None, None)
        readable, _, _ = select.select([sys.stdin], [], [], 0.05)
        if readable and not sys.stdin.buffer.read1(4096):
            return


if __name__ == "__main__":
    main()
