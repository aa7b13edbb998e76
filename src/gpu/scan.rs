//! The flat index on the GPU: inner-product scan over f32, f16 or int8 rows
//! (`scan.wgsl`; int8 with the packed 4x8 dot product where the adapter has
//! it) and top-k selected on the device (`topk.wgsl`: per-workgroup partial
//! top-k, then merge passes until one tile is left), for one query or a
//! batch. Vectors are uploaded once; an index larger than one storage
//! binding is split into chunks of whole passages.
//!
//! Scores match the CPU scan to float rounding (int8: exactly, the same
//! integer dot product and the same two multiplications), and the final k
//! are ordered by the CPU's rule (score, then larger passage id), so the
//! lists agree except inside runs of exactly tied scores.

use std::sync::Arc;

use half::f16;

use super::context::{bytes_f32, bytes_u32, f32_bytes, u32_bytes, GpuContext};
use crate::index::quant::{quantize_i8, Store};
use crate::index::{top_k, FlatIndex, Hit, VectorDType};
use crate::{Error, Result};

/// Largest k selected on the GPU; a bigger k reads every score back and
/// selects on the CPU.
pub const GPU_TOP_K_MAX: usize = 256;
/// Candidates per top-k workgroup (`topk.wgsl` TILE).
const TILE: usize = 1024;
/// Queries per scan workgroup row (`scan.wgsl` QB).
const QB: usize = 8;

struct Chunk {
    /// First passage (ordinal) and passage count.
    first: usize,
    count: usize,
    rows: wgpu::Buffer,
    starts: wgpu::Buffer,
    scales: wgpu::Buffer,
}

/// A [`FlatIndex`]'s vectors resident on the device.
pub struct GpuIndex {
    ctx: Arc<GpuContext>,
    dtype: VectorDType,
    dim: usize,
    /// Dimension padded to a multiple of 4.
    dp: usize,
    passages: usize,
    chunks: Vec<Chunk>,
    scan: wgpu::ComputePipeline,
    topk: wgpu::ComputePipeline,
    bytes: u64,
}

impl GpuIndex {
    /// Uploads `index` (nothing is kept on error).
    pub async fn upload(ctx: Arc<GpuContext>, index: &FlatIndex) -> Result<Self> {
        let (dim, dtype) = (index.dim(), index.dtype());
        let dp = dim.next_multiple_of(4);
        let row_words = match dtype {
            VectorDType::F32 => dp,
            VectorDType::F16 => dp / 2,
            VectorDType::Int8 => dp / 4,
        };
        let passages = index.len();
        if passages as u64 * 4 > ctx.max_binding {
            return Err(Error::Gpu(format!(
                "{passages} passages: one score per passage exceeds the adapter's storage binding"
            )));
        }
        if passages.div_ceil(TILE) > ctx.max_workgroups as usize {
            return Err(Error::Gpu(format!("{passages} passages exceed the top-k kernel's grid")));
        }
        // Chunks of whole passages whose rows fit one binding.
        let row_bytes = row_words as u64 * 4;
        let max_rows = (ctx.max_binding / row_bytes).max(1) as usize;
        let max_passages_per_chunk = (ctx.max_workgroups as usize) * 256;
        let mut plan = Vec::new(); // (first passage, count, first row, rows)
        let (mut first, mut row0, mut rows) = (0usize, 0usize, 0usize);
        for (p, &w) in index.windows.iter().enumerate() {
            let w = w as usize;
            if p > first && (rows + w > max_rows || p - first >= max_passages_per_chunk) {
                plan.push((first, p - first, row0, rows));
                first = p;
                row0 += rows;
                rows = 0;
            }
            if w > max_rows {
                return Err(Error::Gpu(format!("passage {p} has {w} windows: more than one storage binding holds")));
            }
            rows += w;
        }
        if passages > first {
            plan.push((first, passages - first, row0, rows));
        }
        let mut host = Vec::with_capacity(plan.len());
        let mut starts_all = Vec::with_capacity(passages + 1);
        let mut acc = 0u32;
        for &w in &index.windows {
            starts_all.push(acc);
            acc += w;
        }
        starts_all.push(acc);
        for &(first, count, row0, rows) in &plan {
            let mut words = Vec::with_capacity(rows * row_words);
            let mut scales = Vec::new();
            for r in row0..row0 + rows {
                pack_row(&index.store, dim, dp, r, &mut words, &mut scales);
            }
            if scales.is_empty() {
                scales.push(0.0);
            }
            let starts: Vec<u32> = starts_all[first..=first + count].iter().map(|s| s - row0 as u32).collect();
            host.push((first, count, words, starts, scales));
        }
        let dot4 = ctx.dot4 && dtype == VectorDType::Int8;
        let source = include_str!("scan.wgsl").replace(
            "{{DOT4}}",
            if dot4 {
                "return dot4I8Packed(a, b);"
            } else {
                "var s = 0;\n    for (var i = 0u; i < 32u; i += 8u) { s += extractBits(bitcast<i32>(a), i, 8u) * extractBits(bitcast<i32>(b), i, 8u); }\n    return s;"
            },
        );
        let source = if dot4 { format!("requires packed_4x8_integer_dot_product;\n{source}") } else { source };
        let c = ctx.clone();
        let mut bytes = 0u64;
        let (chunks, scan, topk) = ctx
            .scoped("uploading the index to the GPU", || {
                let chunks = host
                    .into_iter()
                    .map(|(first, count, words, starts, scales)| {
                        bytes += (words.len() + starts.len() + scales.len()) as u64 * 4;
                        Chunk {
                            first,
                            count,
                            rows: c.storage("rows", &u32_bytes(&words)),
                            starts: c.storage("starts", &u32_bytes(&starts)),
                            scales: c.storage("row scales", &f32_bytes(&scales)),
                        }
                    })
                    .collect::<Vec<_>>();
                Ok((chunks, c.pipeline("scan", &source), c.pipeline("topk", include_str!("topk.wgsl"))))
            })
            .await?;
        Ok(Self { ctx, dtype, dim, dp, passages, chunks, scan, topk, bytes })
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    pub fn len(&self) -> usize {
        self.passages
    }
    pub fn is_empty(&self) -> bool {
        self.passages == 0
    }
    /// How many pieces the vectors were split into (one per storage binding).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
    /// Bytes resident on the device.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Whether the int8 scan uses `dot4I8Packed`.
    pub fn uses_dot4(&self) -> bool {
        self.ctx.dot4 && self.dtype == VectorDType::Int8
    }

    /// Query words and scales in the layout of `scan.wgsl`.
    fn pack_queries(&self, queries: &[&[f32]]) -> Result<(Vec<u32>, Vec<f32>)> {
        let mut words = Vec::new();
        let mut scales = Vec::with_capacity(queries.len());
        for q in queries {
            if q.len() != self.dim {
                return Err(Error::Invalid(format!("query has {} values, the index {}", q.len(), self.dim)));
            }
            match self.dtype {
                VectorDType::F32 | VectorDType::F16 => {
                    words.extend(q.iter().map(|x| x.to_bits()));
                    words.extend(std::iter::repeat_n(0u32, self.dp - self.dim));
                    scales.push(0.0);
                }
                VectorDType::Int8 => {
                    let (mut qq, s) = quantize_i8(q);
                    qq.resize(self.dp, 0);
                    words.extend(
                        qq.chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8])),
                    );
                    scales.push(s);
                }
            }
        }
        Ok((words, scales))
    }

    /// Records the scan of `queries` into `scores` ([nq, passages]).
    fn record_scan(
        &self,
        pass: &mut wgpu::ComputePass,
        keep: &mut Vec<wgpu::BindGroup>,
        qw: &wgpu::Buffer,
        qs: &wgpu::Buffer,
        nq: usize,
        scores: &wgpu::Buffer,
    ) {
        let c = &self.ctx;
        let q_words = match self.dtype {
            VectorDType::Int8 => self.dp / 4,
            _ => self.dp,
        } as u32;
        let row_words = match self.dtype {
            VectorDType::F32 => self.dp,
            VectorDType::F16 => self.dp / 2,
            VectorDType::Int8 => self.dp / 4,
        } as u32;
        let kind = match self.dtype {
            VectorDType::F32 => 0,
            VectorDType::F16 => 1,
            VectorDType::Int8 => 2,
        };
        let q_tiles = nq.div_ceil(QB);
        // The y dimension carries query tiles; past its limit, more dispatches.
        let per_dispatch = c.max_workgroups as usize;
        for ch in &self.chunks {
            for t0 in (0..q_tiles).step_by(per_dispatch) {
                let tiles = per_dispatch.min(q_tiles - t0);
                let params = [
                    ch.count as u32,
                    row_words,
                    q_words,
                    kind,
                    nq as u32,
                    ch.first as u32,
                    self.passages as u32,
                    (t0 * QB) as u32,
                ];
                let u = c.uniform(&params);
                let bg = c.bind(&self.scan, &[&u, &ch.rows, &ch.starts, &ch.scales, qw, qs, scores]);
                pass.set_pipeline(&self.scan);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups((ch.count as u32).div_ceil(256), tiles as u32, 1);
                keep.push(bg);
            }
        }
    }

    /// Every passage's score for each query (`[nq][passages]`).
    pub async fn scores(&self, queries: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(queries.len());
        for group in queries.chunks(self.queries_per_submission()) {
            out.extend(self.scores_one(group).await?);
        }
        Ok(out)
    }

    fn queries_per_submission(&self) -> usize {
        let per = (self.ctx.max_binding / (self.passages.max(1) as u64 * 4)) as usize;
        per.clamp(1, 1024)
    }

    async fn scores_one(&self, queries: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let c = &self.ctx;
        let nq = queries.len();
        let n = self.passages;
        let (qw, qs) = self.pack_queries(queries)?;
        let readback = c.readback((nq * n) as u64 * 4);
        c.scoped("scanning the index on the GPU", || {
            let qw = c.storage("queries", &u32_bytes(&qw));
            let qs = c.storage("query scales", &f32_bytes(&qs));
            let scores = c.poisoned_output("scores", nq * n);
            let mut enc = c.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("scan") });
            {
                let mut keep = Vec::new();
                let mut pass = enc
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("scan"), timestamp_writes: None });
                self.record_scan(&mut pass, &mut keep, &qw, &qs, nq, &scores);
            }
            enc.copy_buffer_to_buffer(&scores, 0, &readback, 0, (nq * n) as u64 * 4);
            c.queue.submit([enc.finish()]);
            Ok(())
        })
        .await?;
        let v = bytes_f32(&c.read(&readback).await?);
        if v.len() < nq * n || v[..nq * n].iter().any(|x| !x.is_finite()) {
            return Err(Error::Gpu("the GPU scan left scores unwritten (NaN)".into()));
        }
        Ok(v[..nq * n].chunks(n).map(<[f32]>::to_vec).collect())
    }

    /// The best `k` passages for each query, ordered as [`top_k`] orders
    /// them (`ids`: the index's passage ids, for ties).
    pub async fn search(&self, queries: &[&[f32]], k: usize, ids: &[String]) -> Result<Vec<Vec<Hit>>> {
        if ids.len() != self.passages {
            return Err(Error::Invalid(format!("{} ids for {} passages on the GPU", ids.len(), self.passages)));
        }
        let k = k.min(self.passages);
        if k == 0 {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        if k > GPU_TOP_K_MAX {
            let scores = self.scores(queries).await?;
            return Ok(scores.iter().map(|s| top_k(s.iter().copied().enumerate(), ids, k)).collect());
        }
        let mut out = Vec::with_capacity(queries.len());
        let per = self.queries_per_submission().min(self.ctx.max_workgroups as usize);
        for group in queries.chunks(per) {
            out.extend(self.search_one(group, k, ids).await?);
        }
        Ok(out)
    }

    async fn search_one(&self, queries: &[&[f32]], k: usize, ids: &[String]) -> Result<Vec<Vec<Hit>>> {
        let c = &self.ctx;
        let nq = queries.len();
        let n = self.passages;
        let (qw, qs) = self.pack_queries(queries)?;
        let readback_s = c.readback((nq * k) as u64 * 4);
        let readback_i = c.readback((nq * k) as u64 * 4);
        c.scoped("top-k on the GPU", || {
            let qw = c.storage("queries", &u32_bytes(&qw));
            let qs = c.storage("query scales", &f32_bytes(&qs));
            let scores = c.poisoned_output("scores", nq * n);
            // Merge passes: n candidates -> tiles*k -> ... -> k.
            let mut stages = Vec::new();
            let mut len = n;
            loop {
                let tiles = len.div_ceil(TILE);
                stages.push((len, tiles));
                len = tiles * k;
                if tiles == 1 {
                    break;
                }
            }
            let bufs: Vec<(wgpu::Buffer, wgpu::Buffer)> = stages
                .iter()
                .map(|&(_, tiles)| {
                    (
                        c.poisoned_output("topk scores", nq * tiles * k),
                        c.poisoned_output("topk ordinals", nq * tiles * k),
                    )
                })
                .collect();
            let mut enc = c.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("search") });
            {
                let mut keep = Vec::new();
                let mut pass = enc
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("search"), timestamp_writes: None });
                self.record_scan(&mut pass, &mut keep, &qw, &qs, nq, &scores);
                for (s, &(len, tiles)) in stages.iter().enumerate() {
                    let (in_s, in_i, stride, implicit) = match s {
                        0 => (&scores, &scores, n, 1),
                        _ => (&bufs[s - 1].0, &bufs[s - 1].1, stages[s - 1].1 * k, 0),
                    };
                    let params = [len as u32, k as u32, tiles as u32, implicit, stride as u32, 0, 0, 0];
                    let u = c.uniform(&params);
                    let bg = c.bind(&self.topk, &[&u, in_s, in_i, &bufs[s].0, &bufs[s].1]);
                    pass.set_pipeline(&self.topk);
                    pass.set_bind_group(0, &bg, &[]);
                    pass.dispatch_workgroups(tiles as u32, nq as u32, 1);
                    keep.push(bg);
                }
            }
            let last = bufs.last().ok_or_else(|| Error::Gpu("no top-k stage".into()))?;
            enc.copy_buffer_to_buffer(&last.0, 0, &readback_s, 0, (nq * k) as u64 * 4);
            enc.copy_buffer_to_buffer(&last.1, 0, &readback_i, 0, (nq * k) as u64 * 4);
            c.queue.submit([enc.finish()]);
            Ok(())
        })
        .await?;
        let s = bytes_f32(&c.read(&readback_s).await?);
        let o = bytes_u32(&c.read(&readback_i).await?);
        let mut out = Vec::with_capacity(nq);
        for q in 0..nq {
            let mut seen = std::collections::HashSet::new();
            let mut hits = Vec::with_capacity(k);
            for j in 0..k {
                let (score, ord) = (
                    s.get(q * k + j).copied().unwrap_or(f32::NAN),
                    o.get(q * k + j).copied().unwrap_or(u32::MAX) as usize,
                );
                if !score.is_finite() || ord >= n || !seen.insert(ord) {
                    return Err(Error::Gpu(format!(
                        "the GPU top-k returned an invalid hit ({score}, {ord}): unwritten or corrupt output"
                    )));
                }
                hits.push((ord, score));
            }
            // The CPU's order (ties: larger id first) over the same k.
            out.push(top_k(hits.into_iter(), ids, k));
        }
        Ok(out)
    }
}

/// Row `r` of `store` in the layout of `scan.wgsl`.
fn pack_row(store: &Store, dim: usize, dp: usize, r: usize, words: &mut Vec<u32>, scales: &mut Vec<f32>) {
    match store {
        Store::F32(d) => {
            words.extend(d[r * dim..(r + 1) * dim].iter().map(|x| x.to_bits()));
            words.extend(std::iter::repeat_n(0u32, dp - dim));
        }
        Store::F16(d) => {
            let row = &d[r * dim..(r + 1) * dim];
            let at = |i: usize| row.get(i).copied().unwrap_or(f16::ZERO).to_bits() as u32;
            words.extend((0..dp / 2).map(|w| at(2 * w) | (at(2 * w + 1) << 16)));
        }
        Store::Int8 { q, scales: s } => {
            let row = &q[r * dim..(r + 1) * dim];
            let at = |i: usize| row.get(i).copied().unwrap_or(0) as u8 as u32;
            words.extend(
                (0..dp / 4).map(|w| at(4 * w) | (at(4 * w + 1) << 8) | (at(4 * w + 2) << 16) | (at(4 * w + 3) << 24)),
            );
            scales.push(s[r]);
        }
    }
}
