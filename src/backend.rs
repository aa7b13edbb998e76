//! Which hardware runs the encoder and the index scan, and what the caller is
//! told about it.
//!
//! `Auto` uses the GPU when an adapter exists and everything uploads, `Gpu`
//! asks for it explicitly, `Cpu` never touches it. Whatever was asked, a
//! missing adapter, a failed pipeline, out-of-memory or a lost device falls
//! back to the CPU with a warning (printed once) and the search still
//! answers; [`BackendInfo`] says what runs and why.

use serde::Serialize;

/// The caller's choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The GPU when an adapter exists, otherwise the CPU.
    #[default]
    Auto,
    /// The GPU; falls back to the CPU, with a warning, when it cannot run.
    Gpu,
    /// The CPU only (candle; wasm SIMD in the browser).
    Cpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "auto" => Ok(Backend::Auto),
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            o => Err(crate::Error::Invalid(format!("backend must be auto, gpu or cpu, got {o:?}"))),
        }
    }
}

/// Faults injected on purpose, so tests exercise the real fallback paths.
/// A test hook: only with the cargo feature `testing`, never in a shipped build.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Behave as if no adapter existed.
    NoAdapter,
    /// Compile one kernel from broken WGSL (a real shader-compilation failure).
    BadShader,
    /// Destroy the device right after start-up (a real lost device).
    LoseDevice,
}

/// How the GPU backend starts.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// Caps the storage-binding size below the adapter's, so tests can force
    /// the index scan to split a small index into many chunks.
    pub max_binding: Option<u64>,
    /// Longest wait for one submission natively before the device counts as
    /// lost (software adapters are slow: be generous).
    pub timeout: std::time::Duration,
    /// A fault to inject (test hook: cargo feature `testing` only).
    #[cfg(feature = "testing")]
    pub fault: Option<Fault>,
    /// Use the shift-and-multiply int8 dot product even where the adapter
    /// has `dot4I8Packed` (tests cover both).
    pub no_dot4: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            max_binding: None,
            timeout: std::time::Duration::from_secs(120),
            #[cfg(feature = "testing")]
            fault: None,
            no_dot4: false,
        }
    }
}

/// The adapter the GPU backend runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterReport {
    pub name: String,
    /// "vulkan", "webgpu", ...
    pub api: String,
    /// "cpu" for software adapters (lavapipe, SwiftShader): correct, not fast.
    pub device_type: String,
    pub driver: String,
    /// Whether the int8 scan uses WGSL's packed 4x8 dot product (`dot4I8Packed`).
    pub int8_dot4: bool,
    /// The largest storage buffer one kernel sees; bigger indexes are chunked.
    pub max_storage_binding: u64,
}

/// What runs now, and why it is not what was asked for, if it is not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    pub requested: Backend,
    /// "gpu" or "cpu": where the encoder runs now.
    pub backend: &'static str,
    /// "gpu" or "cpu": where the vector scan runs now.
    pub scan: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterReport>,
    /// Why (part of) the work runs on the CPU although the GPU was asked for
    /// (or, with `auto`, could have been).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// With `auto`: why the GPU was not used (no adapter is not a fallback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The CPU encoder's kernel and threads, e.g. "fused simd128, 1 thread"
    /// (none without a transformer: the token table encodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_kernel: Option<String>,
    /// What the build timed at load to choose how it runs: the kernels (the
    /// relaxed-SIMD build), a query split across threads or not (the
    /// threaded build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_choice: Option<String>,
}

impl BackendInfo {
    pub fn cpu(requested: Backend, fallback: Option<String>) -> Self {
        Self {
            requested,
            backend: "cpu",
            scan: "cpu",
            adapter: None,
            fallback,
            note: None,
            cpu_kernel: None,
            kernel_choice: None,
        }
    }
}

/// Says `msg` on stderr (natively) or the console (browser). Used once per
/// fallback: the GPU is then off for good.
#[cfg_attr(not(feature = "encoder"), allow(dead_code))]
pub(crate) fn warn(msg: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::prelude::*;
        #[wasm_bindgen]
        extern "C" {
            #[wasm_bindgen(js_namespace = console, js_name = warn)]
            fn console_warn(s: &str);
        }
        console_warn(&format!("ernie-search: {msg}"));
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("ernie-search: warning: {msg}");
}

/// Runs a future to completion on this thread (natively). wgpu's native
/// futures are ready at once or after a device poll, which our code does
/// itself with a timeout; the deadline here is a second guard against a hang.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> Option<F::Output> {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::park_timeout(Duration::from_millis(2));
    }
}
