// regula WebAssembly kernels: the twins of the conv2d WGSL family (src/wasm/kernels/conv2d.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
