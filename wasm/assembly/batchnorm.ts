// regula WebAssembly kernels: the twins of the batchnorm WGSL family (src/wasm/kernels/batchnorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
