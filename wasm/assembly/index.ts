// Entry point of regula's WebAssembly kernels: every export here is an export of the module.
export { biasAdd, heapBase, scratchBytes, sgemm, sumRows } from "./gemm";
