// The CUDA runtime and NCCL calls of a training step, made through the real
// NVIDIA libraries (dlopen'ed from the paths given), on a machine that may
// have no GPU: every call still enters the library and returns its code.
//
//   gpu_calls LIBCUDART LIBNCCL
//
// Prints one JSON line with its pid and each call's return code, then waits
// for its standard input to close, so whoever watches it can read it while
// it lives.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace plumbtest {
// The kernel the launch names: its address is what cudaLaunchKernel gets.
__attribute__((noinline)) void scale_vector(float *values, int n)
{
	for (int i = 0; i < n; i++)
		values[i] *= 2.0f;
}
} // namespace plumbtest

struct dim3 {
	unsigned x, y, z;
};

typedef int (*set_device_fn)(int);
typedef int (*malloc_fn)(void **, size_t);
typedef int (*memcpy_fn)(void *, const void *, size_t, int);
typedef int (*launch_fn)(const void *, dim3, dim3, void **, size_t, void *);
typedef int (*stream_sync_fn)(void *);
typedef struct {
	char internal[128];
} nccl_unique_id;
typedef int (*comm_init_fn)(void **, int, nccl_unique_id, int);
typedef int (*all_reduce_fn)(const void *, void *, size_t, int, int, void *, void *);
typedef int (*comm_split_fn)(void *, int, int, void **, void *);

static void *symbol(void *library, const char *name)
{
	void *found = dlsym(library, name);
	if (!found) {
		fprintf(stderr, "%s: %s\n", name, dlerror());
		exit(2);
	}
	return found;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBCUDART LIBNCCL\n", argv[0]);
		return 2;
	}
	void *cudart = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	void *nccl = cudart ? dlopen(argv[2], RTLD_NOW | RTLD_LOCAL) : NULL;
	if (!cudart || !nccl) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 2;
	}
	static float host[1024];
	void *device = NULL;
	void *args[] = { &device };

	int set_device = ((set_device_fn)symbol(cudart, "cudaSetDevice"))(3);
	int malloc_rc = ((malloc_fn)symbol(cudart, "cudaMalloc"))(&device, 1 << 20);
	// 1: cudaMemcpyHostToDevice.
	int memcpy_rc = ((memcpy_fn)symbol(cudart, "cudaMemcpy"))(device, host, 4096, 1);
	int launch = ((launch_fn)symbol(cudart, "cudaLaunchKernel"))((const void *)&plumbtest::scale_vector,
								     dim3{ 4, 2, 1 }, dim3{ 128, 1, 1 }, args, 256,
								     NULL);
	int sync = ((stream_sync_fn)symbol(cudart, "cudaStreamSynchronize"))(NULL);

	nccl_unique_id id;
	for (int i = 0; i < 128; i++)
		id.internal[i] = (char)(i * 7 + 1);
	void *comm = NULL;
	int init = ((comm_init_fn)symbol(nccl, "ncclCommInitRank"))(&comm, 4, id, 2);
	// 7: ncclFloat32, 0: ncclSum; a NULL communicator (the init failed).
	int all_reduce = ((all_reduce_fn)symbol(nccl, "ncclAllReduce"))(host, host, 1024, 7, 0, NULL, NULL);
	// Color 3, key 9, of the same NULL communicator.
	void *split = NULL;
	int comm_split = ((comm_split_fn)symbol(nccl, "ncclCommSplit"))(NULL, 3, 9, &split, NULL);

	printf("{\"pid\": %d, \"set_device\": %d, \"malloc\": %d, \"memcpy\": %d, \"launch\": %d, "
	       "\"stream_synchronize\": %d, \"comm_init_rank\": %d, \"all_reduce\": %d, \"comm_split\": %d}\n",
	       getpid(), set_device, malloc_rc, memcpy_rc, launch, sync, init, all_reduce, comm_split);
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0) {
	}
	return 0;
}
