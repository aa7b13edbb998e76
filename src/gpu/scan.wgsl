// Inner-product scan: scores[q, first + p] = max over passage p's windows
// (rows starts[p] .. starts[p+1] of this chunk) of <query q, row>, for a tile
// of up to 8 queries per workgroup row (workgroup_id.y). Dispatched by
// scan.rs. Bindings: 0 params, 1 rows (words), 2 starts [passages + 1],
// 3 row scales [rows] (int8), 4 queries (words), 5 query scales [nq] (int8),
// 6 scores [nq, total].
// Row layouts, dims padded with zeros to a multiple of 4 (`dp`):
//   kind 0 f32:  dp words per row (f32 bits); query dp f32 words
//   kind 1 f16:  dp/2 words per row (two f16, low half first); query dp f32 words
//   kind 2 int8: dp/4 words per row (four i8, low byte first), score =
//                f32(i32 dot) * query scale * row scale, as the CPU computes it;
//                query dp/4 packed words
// The body of dot_i8x4 is filled in by scan.rs: `dot4I8Packed` where the adapter has the
// packed_4x8_integer_dot_product extension, a shift-and-multiply fallback otherwise.
struct Params { passages: u32, row_words: u32, q_words: u32, kind: u32, nq: u32, first: u32, total: u32, q0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> starts: array<u32>;
@group(0) @binding(3) var<storage, read> row_scales: array<f32>;
@group(0) @binding(4) var<storage, read> queries: array<u32>;
@group(0) @binding(5) var<storage, read> qscales: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;

const QB: u32 = 8u;
const NONE: f32 = -3.0e38;

fn dot_i8x4(a: u32, b: u32) -> i32 {
    {{DOT4}}
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) g: vec3<u32>,
        @builtin(num_workgroups) nw: vec3<u32>) {
    let pid = gid.x;
    if (pid >= p.passages) { return; }
    let qa = p.q0 + g.y * QB;
    let nqt = min(QB, p.nq - min(p.nq, qa));
    var best: array<f32, 8>;
    for (var q = 0u; q < QB; q++) { best[q] = NONE; }
    for (var r = starts[pid]; r < starts[pid + 1u]; r++) {
        var acc: array<f32, 8>;
        var iacc: array<i32, 8>;
        for (var q = 0u; q < QB; q++) { acc[q] = 0.0; iacc[q] = 0; }
        let rb = r * p.row_words;
        for (var w = 0u; w < p.row_words; w++) {
            let word = rows[rb + w];
            switch p.kind {
                case 0u: {
                    let v = bitcast<f32>(word);
                    for (var q = 0u; q < nqt; q++) { acc[q] += v * bitcast<f32>(queries[(qa + q) * p.q_words + w]); }
                }
                case 1u: {
                    let v = unpack2x16float(word);
                    for (var q = 0u; q < nqt; q++) {
                        let qb = (qa + q) * p.q_words + 2u * w;
                        acc[q] += v.x * bitcast<f32>(queries[qb]) + v.y * bitcast<f32>(queries[qb + 1u]);
                    }
                }
                default: {
                    for (var q = 0u; q < nqt; q++) { iacc[q] += dot_i8x4(word, queries[(qa + q) * p.q_words + w]); }
                }
            }
        }
        for (var q = 0u; q < nqt; q++) {
            var s = acc[q];
            if (p.kind == 2u) { s = f32(iacc[q]) * qscales[qa + q] * row_scales[r]; }
            best[q] = max(best[q], s);
        }
    }
    for (var q = 0u; q < nqt; q++) { scores[(qa + q) * p.total + p.first + pid] = best[q]; }
}
