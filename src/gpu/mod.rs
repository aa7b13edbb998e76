//! The WebGPU backend: our WGSL kernels dispatched through `wgpu`, on Vulkan
//! natively (lavapipe in CI) and on the browser's WebGPU in wasm32.
//! Compiled with the cargo feature `gpu` (on by default).

mod context;
mod encoder;
mod scan;

pub use context::GpuContext;
pub use encoder::GpuEncoder;
pub use scan::{GpuIndex, GPU_TOP_K_MAX};
