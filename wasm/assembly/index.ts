// Entry point of regula's WebAssembly kernels: every export here is an export of the module.
export { biasAdd, heapBase, scratchBytes, sgemm, sumRows } from "./gemm";
export * from "./elementwise";
export * from "./reduce";
export * from "./random";
export * from "./loss";
export * from "./optim";
export * from "./conv2d";
export * from "./pool";
export * from "./layers";
export * from "./batchnorm";
export * from "./layernorm";
export * from "./weightnorm";
export * from "./augment";
export * from "./attacks";
export * from "./jacobian";
export * from "./regularizers";
export * from "./svd";
export * from "./metrics";
