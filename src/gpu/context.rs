//! The adapter and device: limits, the int8 dot-product capability, error
//! scopes around every upload and submission, buffer readback with a
//! timeout natively, and a poison flag set by a lost device or an
//! uncaptured error, after which every GPU call refuses and the caller
//! falls back to the CPU.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wgpu::util::DeviceExt;

#[cfg(feature = "testing")]
use crate::backend::Fault;
use crate::backend::{AdapterReport, GpuOptions};
use crate::{Error, Result};

/// A started device, shared by the encoder and the index scan.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) report: AdapterReport,
    /// Bytes one storage binding may span.
    pub(crate) max_binding: u64,
    pub(crate) max_workgroups: u32,
    pub(crate) dot4: bool,
    /// The injected fault (test hook: cargo feature `testing` only).
    #[cfg(feature = "testing")]
    pub(crate) fault: Option<Fault>,
    timeout: Duration,
    poison: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Finds an adapter and opens a device, or says why not.
    pub async fn new(opts: &GpuOptions) -> Result<Arc<Self>> {
        #[cfg(feature = "testing")]
        if opts.fault == Some(Fault::NoAdapter) {
            return Err(Error::Gpu("no GPU adapter (WebGPU in the browser, Vulkan natively): simulated".into()));
        }
        // wgpu panics when the scope has no GPU property (a shared or
        // service worker): look first, and say plainly when WebGPU is absent.
        #[cfg(target_arch = "wasm32")]
        {
            let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok();
            let gpu = nav.filter(|n| !n.is_undefined()).and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok());
            if gpu.is_none_or(|g| g.is_undefined() || g.is_null()) {
                return Err(Error::Gpu(
                    "no GPU adapter: this browser (or this worker) has no WebGPU (navigator.gpu is missing)".into(),
                ));
            }
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter (WebGPU in the browser, Vulkan natively): {e}")))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        if limits.max_storage_buffers_per_shader_stage < 7 || limits.max_compute_invocations_per_workgroup < 256 {
            return Err(Error::Gpu(format!(
                "adapter {} is too limited ({} storage buffers per stage, {} invocations per workgroup)",
                info.name, limits.max_storage_buffers_per_shader_stage, limits.max_compute_invocations_per_workgroup
            )));
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ernie-search"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("adapter {} refused a device: {e}", info.name)))?;
        let poison: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let p = poison.clone();
        device.set_device_lost_callback(move |reason, msg| {
            set_poison(&p, format!("the GPU device was lost ({reason:?}): {msg}"));
        });
        let p = poison.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            set_poison(&p, format!("GPU error: {e}"));
        }));
        let dot4 = !opts.no_dot4
            && instance.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
        let max_binding = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding.map_or(max_binding, |m| m.clamp(256, max_binding));
        let report = AdapterReport {
            name: info.name.clone(),
            api: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type).to_lowercase(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            int8_dot4: dot4,
            max_storage_binding: max_binding,
        };
        // wgpu's handles are Send + Sync natively, not in wasm32 (one
        // thread), where the Arc is shared by nothing but this thread.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let ctx = Arc::new(Self {
            device,
            queue,
            report,
            max_binding,
            max_workgroups: limits.max_compute_workgroups_per_dimension,
            dot4,
            #[cfg(feature = "testing")]
            fault: opts.fault,
            timeout: opts.timeout,
            poison,
        });
        Ok(ctx)
    }

    pub fn report(&self) -> &AdapterReport {
        &self.report
    }

    /// Why the device is unusable, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.poison.lock().ok().and_then(|g| g.clone())
    }

    pub fn healthy(&self) -> bool {
        self.poisoned().is_none()
    }

    /// Marks the device unusable (first reason wins).
    pub(crate) fn poison(&self, reason: String) {
        set_poison(&self.poison, reason);
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.poisoned() {
            Some(r) => Err(Error::Gpu(r)),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would (tests of the fallback;
    /// test hook: cargo feature `testing` only).
    #[cfg(feature = "testing")]
    pub fn lose_device(&self) {
        self.device.destroy();
        // Natively the lost callback fires on the next poll.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.poison("the GPU device was destroyed".into());
    }

    /// Runs `f` (buffer and pipeline creation, encoding, submission) inside
    /// validation, out-of-memory and internal error scopes and returns the
    /// first error they caught.
    pub(crate) async fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check()?;
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors = [validation.pop().await, oom.pop().await, internal.pop().await];
        if let Some(e) = errors.into_iter().flatten().next() {
            let msg = match e {
                wgpu::Error::OutOfMemory { .. } => format!("{what}: out of GPU memory"),
                other => format!("{what}: {other}"),
            };
            return Err(Error::Gpu(msg));
        }
        out
    }

    pub(crate) fn storage(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        // A zero-sized binding is invalid: give empty data one word.
        let pad = [0u8; 4];
        let contents = if bytes.is_empty() { &pad[..] } else { bytes };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// A working buffer of `bytes` (at least 4), contents undefined.
    pub(crate) fn scratch(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// An output buffer filled with NaN, so a kernel that does not write a
    /// value is caught by every comparison downstream.
    pub(crate) fn poisoned_output(&self, label: &str, words: usize) -> wgpu::Buffer {
        self.storage(label, &vec![0xFFu8; words.max(1) * 4])
    }

    pub(crate) fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        let mut bytes = Vec::with_capacity(words.len().next_multiple_of(4) * 4);
        words.iter().for_each(|w| bytes.extend_from_slice(&w.to_le_bytes()));
        bytes.resize(bytes.len().next_multiple_of(16), 0);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    pub(crate) fn readback(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A compute pipeline from WGSL (its own bind-group layout, derived from
    /// the shader). Errors surface through the enclosing [`scoped`](Self::scoped).
    pub(crate) fn pipeline(&self, label: &str, source: &str) -> wgpu::ComputePipeline {
        // The BadShader fault: broken WGSL, a real shader-compilation failure.
        #[cfg(feature = "testing")]
        let source = if self.fault == Some(Fault::BadShader) && label == "matmul" {
            "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }"
        } else {
            source
        };
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    pub(crate) fn bind(&self, pipeline: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries })
    }

    /// A 2-D grid of at least `n` workgroups within the per-dimension limit;
    /// kernels linearise it with `num_workgroups`.
    pub(crate) fn grid(&self, n: u32) -> (u32, u32) {
        let max = self.max_workgroups.max(1);
        if n <= max {
            (n.max(1), 1)
        } else {
            (max, n.div_ceil(max))
        }
    }

    /// Waits for the submitted work and reads `buf` back (it must have been
    /// copied into a MAP_READ buffer by that work).
    pub(crate) async fn read(&self, buf: &wgpu::Buffer) -> Result<Vec<u8>> {
        let slot: Arc<Mutex<MapState>> = Arc::new(Mutex::new(MapState::default()));
        let s = slot.clone();
        buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            if let Ok(mut st) = s.lock() {
                st.result = Some(r.map_err(|e| e.to_string()));
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            let polled = self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(self.timeout) });
            if let Err(e) = polled {
                let msg = format!("waiting for the GPU: {e}");
                self.poison(msg.clone());
                return Err(Error::Gpu(msg));
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = self.timeout;
        let mapped = MapFuture(slot).await;
        mapped.map_err(|e| {
            let msg = format!("reading a GPU buffer back: {e}");
            self.poison(msg.clone());
            Error::Gpu(msg)
        })?;
        self.check()?;
        let bytes = {
            let view =
                buf.slice(..).get_mapped_range().map_err(|e| Error::Gpu(format!("mapping a GPU buffer: {e}")))?;
            view.to_vec()
        };
        buf.unmap();
        Ok(bytes)
    }
}

fn set_poison(p: &Mutex<Option<String>>, reason: String) {
    if let Ok(mut g) = p.lock() {
        if g.is_none() {
            *g = Some(reason);
        }
    }
}

#[derive(Default)]
struct MapState {
    result: Option<std::result::Result<(), String>>,
    waker: Option<Waker>,
}

struct MapFuture(Arc<Mutex<MapState>>);

impl Future for MapFuture {
    type Output = std::result::Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut st) = self.0.lock() else { return Poll::Ready(Err("poisoned lock".into())) };
        match st.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                #[cfg(not(target_arch = "wasm32"))]
                {
                    // The device was polled to completion above: no callback
                    // now means the map will never finish.
                    let _ = cx;
                    Poll::Ready(Err("the buffer was not mapped after the device finished".into()))
                }
                #[cfg(target_arch = "wasm32")]
                {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

/// Little-endian bytes of f32 values.
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out
}

pub(crate) fn u32_bytes(v: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out
}

pub(crate) fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

pub(crate) fn bytes_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
