using System.Globalization;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Core.Ir.Text;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Rtl.Engines;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// Sparse attention (<c>hw.qattention</c>): SparsifyAttention makes it of masked dense attention, and its golden kernel, which
/// computes only at the mask's non-zeros, gives the masked dense attention's outputs exactly, for random masks per head.
/// </summary>
public sealed class SparseAttentionTests
{
    /// <summary>Masked dense attention as IR: Q [B, M, H·dk], K and V [B, M, H·d] quantized, Q·Kᵀ, the softmax with
    /// <paramref name="keep"/> (rows of every head, [H·M, M]) as its mask constant, P·V, dequantized.</summary>
    internal static Graph Dense(int batch, int m, int heads, int dk, int dv, bool[] keep)
    {
        string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        int f = heads * dk, g = heads * dv;
        double sq = 0.05, sk = 0.04, sv = 0.03, ss = 0.02, sp = 1.0 / 256, so = 0.01;
        var text = $$"""
            graph @attn(%x: f32[{{batch}},{{m}},{{f}}], %y: f32[{{batch}},{{m}},{{f}}], %z: f32[{{batch}},{{m}},{{g}}]) {
              %q = hw.quantize(%x) : i8[{{batch}},{{m}},{{f}}] q<{{F(sq)}}, 3> loc("qq")
              %k = hw.quantize(%y) : i8[{{batch}},{{m}},{{f}}] q<{{F(sk)}}, -2> loc("qk")
              %v = hw.quantize(%z) : i8[{{batch}},{{m}},{{g}}] q<{{F(sv)}}, 1> loc("qv")
              %mask = hw.qconstant() {codes=[{{string.Join(", ", keep.Select(b => b ? 1 : 0))}}]} : i8[{{keep.Length / m}},{{m}}] q<1, 0> loc("mask")
              %s = hw.qmatmul(%q, %k) {transpose_b=1, heads={{heads}}, clamp=[-128, 127], real_multiplier={{F(sq * sk / ss)}}} : i8[{{batch}},{{heads}},{{m}},{{m}}] q<{{F(ss)}}, 5> loc("scores")
              %p = hw.qsoftmax(%s, %mask) {entries=16} : i8[{{batch}},{{heads}},{{m}},{{m}}] q<{{F(sp)}}, -128> loc("attn")
              %o = hw.qmatmul(%p, %v) {transpose_b=0, heads={{heads}}, clamp=[-128, 127], real_multiplier={{F(sp * sv / so)}}} : i8[{{batch}},{{m}},{{g}}] q<{{F(so)}}, -4> loc("pv")
              %out = hw.dequantize(%o) : f32[{{batch}},{{m}},{{g}}] loc("out")
              return %out
            }
            """;
        var graph = Parser.ParseOne(text);
        Pipeline.Run(graph, HwConfig.Default, [new LegalizeRequant()]);
        return graph;
    }

    static Tensor[] Inputs(int seed, int batch, int m, int heads, int dk, int dv)
    {
        var rng = new Random(seed);
        Tensor T(int features) => new(DType.Float32, [batch, m, features], Enumerable.Range(0, batch * m * features).Select(_ => rng.NextDouble() * 4 - 2).ToArray());
        return [T(heads * dk), T(heads * dk), T(heads * dv)];
    }

    /// <summary>Random keep flags per head: each row keeps some columns at random (at the given density), and some rows keep
    /// a single column, one of them only the diagonal.</summary>
    static bool[] RandomKeep(Random rng, int heads, int m, double density)
    {
        var keep = new bool[heads * m * m];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < m; i++)
            {
                var row = keep.AsSpan((h * m + i) * m, m);
                switch (rng.Next(6))
                {
                    case 0: row[i] = true; break;                 // only the diagonal
                    case 1: row[rng.Next(m)] = true; break;       // a single non-zero
                    default:
                        for (int j = 0; j < m; j++) row[j] = rng.NextDouble() < density;
                        if (!row.Contains(true)) row[rng.Next(m)] = true;
                        break;
                }
            }
        return keep;
    }

    static HwConfig Sparse(string entries) => HwConfig.Default with { SparseAttention = entries };

    /// <summary>Golden outputs before and after SparsifyAttention, and the graph after it.</summary>
    static (Tensor Dense, Tensor Sparse, Graph After) Compare(Graph g, Tensor[] x, string entries)
    {
        var dense = HardwareModel.Outputs(g, x)[0];
        Pipeline.Run(g, Sparse(entries), [new SparsifyAttention()]);
        return (dense, HardwareModel.Outputs(g, x)[0], g);
    }

    [Theory]
    [InlineData(1, 0.5)]
    [InlineData(2, 0.25)]
    [InlineData(3, 0.1)]
    public void The_sparse_kernel_equals_masked_dense_attention_on_random_masks_per_head(int seed, double density)
    {
        var rng = new Random(seed);
        int batch = 2, m = 9, heads = 3, dk = 4, dv = 3;
        var keep = RandomKeep(rng, heads, m, density);
        var (dense, sparse, after) = Compare(Dense(batch, m, heads, dk, dv, keep), Inputs(seed, batch, m, heads, dk, dv), "*=model");
        var op = Assert.Single(after.Ops.OfType<QAttention>());
        Assert.DoesNotContain(after.Ops, o => o is QSoftmax or QMatMul or QConstant);
        Assert.Equal(heads, op.Masks.Count);
        for (int h = 0; h < heads; h++) Assert.Equal(keep.AsSpan(h * m * m, m * m).ToArray(), op.MaskOf(h).Keep(m, m));
        Assert.Equal(dense.Data, sparse.Data);
        Assert.True(dense.Data.Distinct().Count() > 10, "the outputs vary");
    }

    /// <summary>A 256-token sequence, heads with different masks (Λ and a random CSR): the golden kernels agree there too.</summary>
    [Fact]
    public void A_256_token_sequence_with_different_masks_per_head_equals_masked_dense_attention()
    {
        int m = 256, heads = 2, dk = 4, dv = 4;
        var rng = new Random(9);
        var keep = new AttentionMask.Lambda(4, 16, true).Keep(m, m).Concat(RandomKeep(rng, 1, m, 0.05)).ToArray();
        var (dense, sparse, after) = Compare(Dense(1, m, heads, dk, dv, keep), Inputs(9, 1, m, heads, dk, dv), "attn=model");
        var op = Assert.Single(after.Ops.OfType<QAttention>());
        Assert.IsType<AttentionMask.Lambda>(op.MaskOf(0));
        Assert.IsType<AttentionMask.Csr>(op.MaskOf(1));
        Assert.Equal(dense.Data, sparse.Data);
    }

    [Fact]
    public void A_lambda_mask_in_the_model_becomes_lambda_and_a_vitcod_split_equals_dense_attention_on_its_mask()
    {
        int batch = 1, m = 12, heads = 2, dk = 4, dv = 4;
        var lambda = new AttentionMask.Lambda(2, 4, true);
        var keep = Enumerable.Repeat(lambda.Keep(m, m), heads).SelectMany(k => k).ToArray();
        var x = Inputs(5, batch, m, heads, dk, dv);
        var (dense, sparse, after) = Compare(Dense(batch, m, heads, dk, dv, keep), x, "attn=model");
        Assert.Equal("lambda(s=2, w=4, causal)", Assert.Single(Assert.Single(after.Ops.OfType<QAttention>()).Masks).ToString());
        Assert.Equal(dense.Data, sparse.Data);

        // ViTCoD's split of a random mask per head is a mask of its own (its dense columns attended by every row): the sparse
        // kernel on it equals dense attention with it as the mask.
        var rng = new Random(6);
        var random = RandomKeep(rng, heads, m, 0.4);
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < m; i++) random[(h * m + i) * m] = rng.Next(5) > 0;   // column 0: a global token for most rows
        var splits = Enumerable.Range(0, heads).Select(h => AttentionMask.Split(AttentionMask.FromKeep(random.AsSpan(h * m * m, m * m), m, m), 0.5, m, m)).ToArray();
        Assert.All(splits, s => Assert.Contains(0, s.DenseColumns));
        var splitKeep = splits.SelectMany(s => s.Keep(m, m)).ToArray();
        var (dense2, sparse2, after2) = Compare(Dense(batch, m, heads, dk, dv, random), x, "attn=vitcod(theta=0.5)");
        var reference = HardwareModel.Outputs(Dense(batch, m, heads, dk, dv, splitKeep), x)[0];
        Assert.Equal(reference.Data, sparse2.Data);
        Assert.NotEqual(dense2.Data, sparse2.Data);
        Assert.All(Assert.Single(after2.Ops.OfType<QAttention>()).Masks, mk => Assert.IsType<AttentionMask.VitCod>(mk));
    }

    [Fact]
    public void A_config_mask_replaces_the_models_and_prints_and_parses_back()
    {
        int m = 4, heads = 2;
        var keep = Enumerable.Repeat(true, heads * m * m).ToArray();
        var g = Dense(1, m, heads, 2, 2, keep);
        Pipeline.Run(g, Sparse("attn=causal/csr(ptr=[0,1,2,3,4], col=[0,0,1,3])"), [new SparsifyAttention()]);
        var op = Assert.Single(g.Ops.OfType<QAttention>());
        Assert.Equal(["causal", "csr(ptr=[0,1,2,3,4], col=[0,0,1,3])"], op.Masks.Select(k => k.ToString()));
        var printed = Printer.Print(g);
        Assert.Equal(printed, Printer.Print(Parser.ParseOne(printed)));
    }

    [Theory]
    [InlineData("attn=csr(ptr=[0,1,1,2,3], col=[0,1,2])", "layer 'attn': row 1 of the CSR mask has no non-zero: its softmax would divide by zero")]
    [InlineData("attn=causal/csr(ptr=[0,1,2,4,5], col=[0,1,1,0,3])", "layer 'attn' head 1: column indices of row 2 are not increasing (1 then 0)")]
    [InlineData("attn=dense/csr(ptr=[0,1,2,3,4], col=[0,1,2,4])", "layer 'attn' head 1: column index 4 of row 3 is outside the 4 key positions")]
    [InlineData("attn=csr(ptr=[0,1,2,3], col=[0,1,2])", "layer 'attn': the CSR mask has 3 rows (row pointers: rows + 1), the sequence 4")]
    [InlineData("attn=model/vitcod(theta=1.5)", "layer 'attn' head 1: ViTCoD θ 1.5 is outside [0, 1]")]
    [InlineData("attn=dense/dense/dense", "layer 'attn': sparseAttention gives 3 masks for 2 heads (one for every head or one per head)")]
    [InlineData("attn=lambda(s=1)", "layer 'attn': attention mask 'lambda(s=1)': lambda needs 'w'")]
    [InlineData("softmax=model", "sparseAttention names 'softmax', which is no layer of the model (its layers: 'attn')")]
    public void A_bad_mask_is_one_error_naming_the_layer_and_head(string entries, string message)
    {
        var g = Dense(1, 4, 2, 2, 2, Enumerable.Repeat(true, 2 * 16).ToArray());
        var e = Assert.Throws<HwGenException>(() => Pipeline.Run(g, Sparse(entries), [new SparsifyAttention()]));
        Assert.Equal(message, e.Message);
    }

    /// <summary>tiny_vit_digits scales its scores (a hw.qrequant between Q·Kᵀ and the softmax): the sparse op takes the scale
    /// along, and with dense masks gives the dense model's outputs exactly; it prints and parses back.</summary>
    [Fact]
    public void A_score_scale_goes_into_the_sparse_op_and_dense_masks_give_the_dense_outputs()
    {
        var model = OnnxLoader.Load(Path.Combine(Repo.Root, "examples", "tiny_vit_digits", "model.onnx"));
        var passes = Pipeline.Passes.TakeWhile(p => p is not SelectEngines).ToList();
        var dense = LowerOnnxToIr.Run(model, 2);
        Pipeline.Run(dense, HwConfig.Default, passes);
        var sparse = LowerOnnxToIr.Run(model, 2);
        Pipeline.Run(sparse, Sparse("*=dense"), passes);
        var ops = sparse.Ops.OfType<QAttention>().ToList();
        Assert.Equal(2, ops.Count);
        Assert.All(ops, o => Assert.NotNull(o.ScaleRequant));
        Assert.DoesNotContain(sparse.Ops, o => o is QSoftmax or QRequant);
        var rng = new Random(7);
        var x = new Tensor(DType.Float32, [2, 16, 4], Enumerable.Range(0, 128).Select(_ => rng.NextDouble()).ToArray());
        Assert.Equal(HardwareModel.Outputs(dense, [x])[0].Data, HardwareModel.Outputs(sparse, [x])[0].Data);
        var printed = Printer.Print(sparse);
        Assert.Contains("raw_score_quant=", printed);
        Assert.Equal(printed, Printer.Print(Parser.ParseOne(printed)));
    }

    /// <summary>From ONNX, a causal mask constant is <c>causal</c>; a bad mask in the config is one line from <c>hwgen compile</c>,
    /// exit 1, nothing written.</summary>
    [Fact]
    public void A_causal_onnx_mask_is_causal_and_a_bad_config_mask_fails_the_compile_cleanly()
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(23, 1, 4, 8, 2, mask: AttentionModels.MaskKind.Causal).Save(dir.File("m.onnx"));
        var g = LowerOnnxToIr.Run(OnnxLoader.Load(path));
        Pipeline.Run(g, Sparse("softmax=model"), Pipeline.Passes.TakeWhile(p => p is not SelectEngines));
        Assert.Equal("causal", Assert.Single(Assert.Single(g.Ops.OfType<QAttention>()).Masks).ToString());
        File.WriteAllText(dir.File("hw.json"), """{ "sparseAttention": "softmax=causal/csr(ptr=[0,1,2,2,3], col=[0,1,3])" }""");
        CleanFailure.Assert(dir, ["compile", path, "--config", dir.File("hw.json")],
            "m.onnx", "layer 'softmax' head 1: row 2 of the CSR mask has no non-zero: its softmax would divide by zero");
    }

    /// <summary>From ONNX: a per-head additive mask constant becomes each head's CSR mask, and the sparse engine's program computes
    /// the golden outputs at the instruction level.</summary>
    [Fact]
    public void An_onnx_mask_constant_becomes_the_heads_masks_and_the_program_computes_them()
    {
        using var dir = new TempDir();
        int tokens = 6, heads = 2;
        var path = AttentionModels.MultiHead(21, 1, tokens, 8, heads, mask: AttentionModels.MaskKind.PerHead).Save(dir.File("m.onnx"));
        var g = LowerOnnxToIr.Run(OnnxLoader.Load(path));
        var keep = Assert.Single(g.Ops.OfType<QConstant>()).Codes.Select(c => c != 0).ToArray();
        var passes = Pipeline.Passes.TakeWhile(p => p is not SelectEngines).ToList();
        var x = AttentionModels.Input(22, 1, tokens, 8);
        var denseGraph = LowerOnnxToIr.Run(OnnxLoader.Load(path));
        Pipeline.Run(denseGraph, HwConfig.Default, passes);
        Pipeline.Run(g, Sparse("softmax=model"), passes);
        var op = Assert.Single(g.Ops.OfType<QAttention>());
        for (int h = 0; h < heads; h++) Assert.Equal(keep.AsSpan(h * tokens * tokens, tokens * tokens).ToArray(), op.MaskOf(h).Keep(tokens, tokens));
        Assert.Equal(HardwareModel.Outputs(denseGraph, [x])[0].Data, HardwareModel.Outputs(g, [x])[0].Data);
        var c = HwGen.Cli.Flow.Compile(path, Sparse("softmax=model"));
        Assert.Equal(SparseAttentionEngine_Id, Assert.Single(c.Graph.Ops.OfType<QAttention>()).Engine);
        HwGen.Cli.Flow.Golden(c, [x]);
    }

    const string SparseAttentionEngine_Id = HwGen.Rtl.Engines.SparseAttention.SparseAttentionEngine.Id;

    /// <summary>The engine's program at the instruction level: Λ masks, two heads, one and two sequences.</summary>
    [Theory]
    [InlineData(1, 16, "softmax=lambda(s=2, w=4)")]
    [InlineData(2, 8, "softmax=lambda(s=2, w=4, causal)")]
    public void The_sparse_program_computes_the_golden_outputs_at_the_instruction_level(int batch, int tokens, string masks)
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(31, batch, tokens, 16, 2).Save(dir.File("m.onnx"));
        var c = HwGen.Cli.Flow.Compile(path, Sparse(masks));
        Assert.Contains(c.Design.Program, i => i is HwGen.Rtl.Engines.SparseAttention.Satt);
        HwGen.Cli.Flow.Golden(c, [AttentionModels.Input(32, batch, tokens, 16)]);
    }

    /// <summary>The engine holds two rows' scores and two rows' probabilities: its timer refuses a program whose score SATTs run
    /// more rows ahead of the weighted sums than that (the RTL would wait forever), and times the compiler's order.</summary>
    [Fact]
    public void The_engine_timer_refuses_score_rows_too_far_ahead_of_their_weighted_sums()
    {
        using var dir = new TempDir();
        var path = AttentionModels.MultiHead(31, 1, 16, 16, 2).Save(dir.File("m.onnx"));
        var c = HwGen.Cli.Flow.Compile(path, Sparse("softmax=lambda(s=2, w=4)"));
        var satts = c.Design.Program.OfType<HwGen.Rtl.Engines.SparseAttention.Satt>().ToList();
        static void Run(IEnumerable<HwGen.Rtl.Engines.SparseAttention.Satt> program)
        {
            var timer = new HwGen.Rtl.Engines.SparseAttention.SattTimer();
            long a = 0;
            foreach (var i in program) timer.Take(i, a = Math.Max(a + 1, timer.ReadyFor(i)));
        }
        Run(satts);
        var scoresFirst = satts.Where(i => !i.Pv).Concat(satts.Where(i => i.Pv));
        var e = Assert.Throws<HwGen.Rtl.Program.InstructionSimulator.ProgramException>(() => Run(scoresFirst));
        Assert.Contains("would wait forever for the softmax of row 2", e.Message);
    }
}
