// Masked softmax attention, one invocation per (sequence, head, query token),
// with an online softmax over the keys. Padding keys get the CPU's additive
// bias (mask - 1) * 1e4. Dispatched by encoder.rs. Bindings: 0 params,
// 1 qkv [tokens, 3*hidden] (q | k | v), 2 mask [tokens] (1 real, 0 padding),
// 3 ctx [tokens, hidden].
struct Params { batch: u32, len: u32, hidden: u32, heads: u32, head_dim: u32, p0: u32, p1: u32, p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;

const MAX_HEAD: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = gid.y * nw.x * 64u + gid.x;
    if (idx >= p.batch * p.heads * p.len) { return; }
    let i = idx % p.len;
    let h = (idx / p.len) % p.heads;
    let b = idx / (p.len * p.heads);
    let stride = 3u * p.hidden;
    let qbase = (b * p.len + i) * stride + h * p.head_dim;
    var q: array<f32, 64>;
    var acc: array<f32, 64>;
    for (var d = 0u; d < p.head_dim; d++) {
        q[d] = qkv[qbase + d];
        acc[d] = 0.0;
    }
    let root = sqrt(f32(p.head_dim));
    var m = -3.0e38;
    var total = 0.0;
    for (var j = 0u; j < p.len; j++) {
        let kbase = (b * p.len + j) * stride + p.hidden + h * p.head_dim;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim; d++) { s += q[d] * qkv[kbase + d]; }
        s = s / root + (mask[b * p.len + j] - 1.0) * 1e4;
        let m2 = max(m, s);
        let corr = exp(m - m2);
        let e = exp(s - m2);
        total = total * corr + e;
        let vbase = kbase + p.hidden;
        for (var d = 0u; d < p.head_dim; d++) { acc[d] = acc[d] * corr + e * qkv[vbase + d]; }
        m = m2;
    }
    let obase = (b * p.len + i) * p.hidden + h * p.head_dim;
    for (var d = 0u; d < p.head_dim; d++) { ctx[obase + d] = acc[d] / total; }
}
