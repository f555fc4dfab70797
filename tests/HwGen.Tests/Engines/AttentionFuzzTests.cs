using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Rtl.Engines;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Engines;

/// <summary>
/// The attention import paths (head split and merge views, Transpose and Reshape of activations, products of two
/// activations, masks, mean pooling) against malformed and unusual models: a bad one is one clean error naming the file,
/// the node and the reason (<see cref="CleanFailure"/>); an unusual but valid one compiles to a graph whose outputs have
/// ONNX's shapes and agree with ONNX semantics within one quantum (two for the random changes).
/// </summary>
public sealed class AttentionFuzzTests
{
    const DType U8 = DType.UInt8;
    /// <summary>The input's scale (zero point 128: reals in [-1, 1]); layout QDQ pairs keep it.</summary>
    const double S = 2.0 / 255;

    /// <summary>A float input of <paramref name="shape"/>, quantized and dequantized: the real activation.</summary>
    static string Act(OnnxBuilder b, string name, params int[] shape)
    {
        b.Input(name, DType.Float32, shape);
        return QdqModels.Dq(b, QdqModels.Q(b, name, S, 128, U8, name + "_in"), S, 128, U8, name);
    }

    static string Qdq(OnnxBuilder b, string x, double s, string tag, double zp = 128) =>
        QdqModels.Dq(b, QdqModels.Q(b, x, s, zp, U8, tag), s, zp, U8, tag);

    static string ReshapeTo(OnnxBuilder b, string x, string tag, params long[] spec) =>
        b.Node("Reshape", [x, b.Init(tag + "_shape", DType.Int64, [spec.Length], spec.Select(v => (double)v).ToArray())], tag);

    static string TransposeBy(OnnxBuilder b, string x, string tag, long[]? perm) =>
        perm is null ? b.Node("Transpose", [x], tag) : b.Node("Transpose", [x], tag, ("perm", perm));

    /// <summary>Ends the graph with a QDQ pair at <paramref name="s"/> and the output of ONNX's <paramref name="shape"/>.</summary>
    static string Save(TempDir dir, OnnxBuilder b, string x, double s, int[] shape)
    {
        b.Output(Qdq(b, x, s, "out"), DType.Float32, shape);
        return b.Save(dir.File("m.onnx"));
    }

    /// <summary>
    /// Multi-head self-attention without projections (Q = K = V = x [B, T, D]) as torch writes it: each split into heads by a
    /// Reshape and a Transpose (K to [B, H, dh, T]), a QDQ pair at the input's parameters after each layout op; scores Q·Kᵀ
    /// times 1/sqrt(dh), quantized; an optional mask Add; Softmax; P·V, quantized; merged back by Transpose and Reshape.
    /// </summary>
    sealed record Mha
    {
        public int Batch { get; init; } = 1;
        public int Tokens { get; init; } = 8;
        public int D { get; init; } = 16;
        public int Heads { get; init; } = 2;
        public int[]? Input { get; init; }
        public long[]? QSplit { get; init; }
        public long[]? KSplit { get; init; }
        public long[]? VSplit { get; init; }
        public long[] QPerm { get; init; } = [0, 2, 1, 3];
        public long[] KPerm { get; init; } = [0, 2, 3, 1];
        public long[] VPerm { get; init; } = [0, 2, 1, 3];
        public long[] OPerm { get; init; } = [0, 2, 1, 3];
        /// <summary>Transposes after Q's head transpose (identity perms, or swaps that cancel).</summary>
        public long[][] QExtra { get; init; } = [];
        public long[]? Merge { get; init; }
        public int[]? OutShape { get; init; }
        /// <summary>The scale of the QDQ pair after K's transpose (the input's keeps the layout).</summary>
        public double KtScale { get; init; } = S;
        public (int[] Shape, double[] Values, DType Type)? Mask { get; init; }
        public bool MaskQdq { get; init; }
        public long SoftmaxAxis { get; init; } = -1;
        public int Opset { get; init; } = 13;
        int Dh => D / Heads;
        long[] Split => [-1, Tokens, Heads, Dh];

        public OnnxBuilder Build()
        {
            var b = new OnnxBuilder(Opset);
            var x = Act(b, "x", Input ?? [Batch, Tokens, D]);
            string Layout(string y, string tag, double s = S) => Qdq(b, y, s, tag + "_qdq");
            var q = Layout(TransposeBy(b, Layout(ReshapeTo(b, x, "q_split", QSplit ?? Split), "q_split"), "q_heads", QPerm), "q_heads");
            for (int i = 0; i < QExtra.Length; i++) q = Layout(TransposeBy(b, q, $"q_extra{i}", QExtra[i]), $"q_extra{i}");
            var k = Layout(TransposeBy(b, Layout(ReshapeTo(b, x, "k_split", KSplit ?? Split), "k_split"), "k_heads", KPerm), "k_heads", KtScale);
            var v = Layout(TransposeBy(b, Layout(ReshapeTo(b, x, "v_split", VSplit ?? Split), "v_split"), "v_heads", VPerm), "v_heads");
            var scores = b.Node("MatMul", [q, k], "scores");
            scores = b.Node("Mul", [scores, b.Init("inv_sqrt_dh", DType.Float32, [], 1 / Math.Sqrt(Dh))], "scale");
            double ss = 4.0 / 255;
            scores = Qdq(b, scores, ss, "s");
            if (Mask is { } mask)
            {
                var (shape, values, type) = mask;
                scores = b.Node("Add", [scores, b.Init("mask", type, shape, values)], "mask_add");
                if (MaskQdq) scores = Qdq(b, scores, ss, "ms");
            }
            var p = Qdq(b, b.Node("Softmax", [scores], "softmax", ("axis", (int)SoftmaxAxis)), 1.0 / 256, "p", zp: 0);
            var pv = Qdq(b, b.Node("MatMul", [p, v], "pv"), S, "o");
            var o = Layout(TransposeBy(b, pv, "o_merge", OPerm), "o_merge");
            o = ReshapeTo(b, o, "o_flat", Merge ?? [-1, Tokens, D]);
            b.Output(Qdq(b, o, S, "out"), DType.Float32, OutShape ?? [Batch, Tokens, D]);
            return b;
        }

        public string Describe()
        {
            static string F(long[]? xs) => xs is null ? "default" : $"[{string.Join(", ", xs)}]";
            return $"B {Batch}, T {Tokens}, D {D}, H {Heads}, splits {F(QSplit)} {F(KSplit)} {F(VSplit)}, perms {F(QPerm)} {F(KPerm)} {F(VPerm)}, " +
                $"merge {F(Merge)}, mask {(Mask is { } k ? ShapeUtil.Format(k.Shape) : "none")}, softmax axis {SoftmaxAxis}";
        }

        public Tensor Sample(int seed)
        {
            var shape = Input ?? [Batch, Tokens, D];
            var rng = new Random(seed);
            return new Tensor(DType.Float32, shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray());
        }
    }

    /// <summary>Greedy scheduling keeps a compile that passes short.</summary>
    static readonly HwConfig Fast = new() { Scheduler = "greedy" };

    static string[] Compile(TempDir dir, string path, string? config = null)
    {
        File.WriteAllText(dir.File("hw.json"), config ?? """{ "scheduler": "greedy" }""");
        return ["compile", path, "--config", dir.File("hw.json")];
    }

    /// <summary>One clean error naming the file, the node and the reason, and no internal error (no IR verifier message either:
    /// the importer must have refused the model itself).</summary>
    static void Refused(TempDir dir, string path, string node, params string[] reason)
    {
        var line = CleanFailure.Assert(dir, Compile(dir, path), [Path.GetFileName(path), .. node.Length == 0 ? Array.Empty<string>() : new[] { $"'{node}'" }, .. reason]);
        Assert.DoesNotContain("IR verifier", line);
    }

    /// <summary>The compiled graph's output has ONNX's shape and the hardware model agrees with ONNX semantics within one
    /// quantum (and the outputs vary).</summary>
    static Compiled Agrees(string path, Tensor x, double quantum, HwConfig? config = null)
    {
        var c = Flow.Compile(path, config ?? Fast);
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { [c.Model.RuntimeInputs.First().Name] = x }).Values.Single();
        Assert.Equal(onnx.Shape, hw.Shape);
        Assert.True(hw.Data.Zip(onnx.Data).All(p => Math.Abs(p.First - p.Second) <= quantum * 1.0001),
            $"hardware model vs ONNX semantics: largest difference {hw.Data.Zip(onnx.Data).Max(p => Math.Abs(p.First - p.Second)) / quantum:F2} quanta");
        Assert.True(hw.Data.Distinct().Count() > 5, "the outputs hardly vary");
        return c;
    }

    // ---- models that must work ----

    public static TheoryData<string> Unusual => new()
    {
        "plain", "zeros in the split", "rank-5 split", "identity transposes", "swaps that cancel", "batch 2", "flat rows split into sequences",
        "sequences joined", "no batch axis", "causal mask", "per-head mask", "mixed constant with qdq",
    };

    static Mha Variant(string name) => name switch
    {
        "plain" => new Mha(),
        "zeros in the split" => new Mha { QSplit = [0, 0, 2, 8], KSplit = [0, 0, 2, -1], VSplit = [0, 8, -1, 8] },
        "rank-5 split" => new Mha
        {
            QSplit = [1, -1, 8, 2, 8], KSplit = [1, -1, 8, 2, 8], VSplit = [1, -1, 8, 2, 8], QPerm = [0, 1, 3, 2, 4], KPerm = [0, 1, 3, 4, 2],
            VPerm = [0, 1, 3, 2, 4], OPerm = [0, 1, 3, 2, 4],
        },
        "identity transposes" => new Mha { QExtra = [[0, 1, 2, 3]] },
        "swaps that cancel" => new Mha { QExtra = [[0, 1, 3, 2], [0, 1, 3, 2]] },
        "batch 2" => new Mha { Batch = 2 },
        // Q, K and V stored as [B·T, D] rows and split into B sequences of T tokens: each sequence attends to itself.
        "flat rows split into sequences" => new Mha
        {
            Batch = 2, Input = [16, 16], QSplit = [2, 8, 2, 8], KSplit = [2, 8, 2, 8], VSplit = [2, 8, 2, 8], Merge = [16, 16], OutShape = [16, 16],
        },
        // Two sequences of 4 tokens split as one of 8: every token attends to all 8.
        "sequences joined" => new Mha { Batch = 2, Tokens = 4, QSplit = [1, 8, 2, 8], KSplit = [1, 8, 2, 8], VSplit = [1, 8, 2, 8], Merge = [2, 4, 16] },
        // x [T, D] split into [T, H, dh] and heads [H, T, dh]: no leading axis at all.
        "no batch axis" => new Mha
        {
            Input = [8, 16], QSplit = [8, 2, 8], KSplit = [-1, 2, 8], VSplit = [0, 2, -1], QPerm = [1, 0, 2], KPerm = [1, 2, 0], VPerm = [1, 0, 2],
            OPerm = [1, 0, 2], Merge = [8, 16], OutShape = [8, 16],
        },
        "causal mask" => new Mha { Mask = ([8, 8], Enumerable.Range(0, 64).Select(i => i % 8 > i / 8 ? -1e9 : 0.0).ToArray(), DType.Float32) },
        "per-head mask" => new Mha { Mask = ([1, 2, 8, 8], Enumerable.Range(0, 128).Select(i => i % 8 == i / 8 % 8 || i % 3 == 0 ? 0 : -1e4).ToArray(), DType.Float32) },
        // Not a mask (a value 0.5): an Add of a constant, quantized before the Softmax.
        "mixed constant with qdq" => new Mha { Mask = ([8, 8], Enumerable.Range(0, 64).Select(i => i % 8 == 0 ? 0.5 : 0.0).ToArray(), DType.Float32), MaskQdq = true },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Unusual))]
    public void Unusual_but_valid_attention_compiles_with_onnx_shapes_and_agrees(string name)
    {
        using var dir = new TempDir();
        var m = Variant(name);
        var path = m.Build().Save(dir.File("m.onnx"));
        var c = Agrees(path, m.Sample(3), S);
        Assert.Equal(2, c.Graph.Ops.OfType<QMatMul>().Count());
        Assert.DoesNotContain(c.Graph.Ops, o => o is Reshape r && ShapeUtil.Rows(r.Input.Type.Shape) != ShapeUtil.Rows(r.NewShape));
    }

    /// <summary>Scores of Q and K stored as [B·T, D] rows and split into B sequences: [B, H, T, T] as ONNX shapes them, not one
    /// sequence of B·T rows.</summary>
    [Fact]
    public void Scores_of_flat_rows_split_into_sequences_have_onnx_shape()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 16, 16);
        var q = TransposeBy(b, ReshapeTo(b, x, "q_split", 2, 8, 2, 8), "q_heads", [0, 2, 1, 3]);
        var k = TransposeBy(b, ReshapeTo(b, x, "k_split", 2, 8, 2, 8), "k_heads", [0, 2, 3, 1]);
        var path = Save(dir, b, b.Node("MatMul", [q, k], "scores"), 8.0 / 255, [2, 2, 8, 8]);
        Agrees(path, new Mha { Input = [16, 16] }.Sample(9), 8.0 / 255);
    }

    /// <summary><c>--batch</c> replaces the leading dimension: the head split's -1 follows it, and a split that names the
    /// batch no longer fits (one error naming the Reshape); sequences of 6 tokens at 4 array rows compile.</summary>
    [Theory]
    [InlineData(8, "3", null, null)]
    [InlineData(8, "2", new long[] { 1, 8, 2, 8 }, "cannot reshape")]
    [InlineData(6, "2", null, null)]
    public void A_batch_option_on_attention_compiles_or_is_one_error(int tokens, string batch, long[]? split, string? reason)
    {
        using var dir = new TempDir();
        var path = new Mha { Tokens = tokens, QSplit = split }.Build().Save(dir.File("m.onnx"));
        string[] args = [.. Compile(dir, path), "--batch", batch];
        if (reason is null) Assert.Null(CleanFailure.Run(dir, args, mayPass: true));
        else CleanFailure.Assert(dir, args, "m.onnx", split is null ? "'scores'" : "'q_split'", reason);
    }

    /// <summary>A Transpose without perm reverses the axes: Kᵀ of a 2-D activation.</summary>
    [Fact]
    public void A_transpose_without_perm_of_a_2d_activation_is_k_transposed()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8, 16);
        var s = b.Node("MatMul", [x, Qdq(b, TransposeBy(b, x, "kt", null), S, "kt")], "scores");
        var path = Save(dir, b, s, 16.0 / 255, [8, 8]);
        var c = Agrees(path, new Mha { Input = [8, 16] }.Sample(5), 16.0 / 255);
        Assert.True(Assert.Single(c.Graph.Ops.OfType<QMatMul>()).TransposeB);
    }

    // ---- Reshape targets ----

    [Theory]
    [InlineData(new long[] { -1, -1, 2, 8 }, "q_split", "more than one -1")]
    [InlineData(new long[] { -1, 8, 3, 5 }, "q_split", "cannot reshape")]
    [InlineData(new long[] { 1, 8, 2, 9 }, "q_split", "cannot reshape")]
    [InlineData(new long[] { 1, 8, -2, -8 }, "q_split", "entry -2")]
    [InlineData(new long[] { 1, 8, 4294967298, 8 }, "q_split", "entry 4294967298")]
    [InlineData(new long[] { -1, 100000, 100000, 8 }, "q_split", "cannot reshape")]
    [InlineData(new long[] { 0, 0, 0, 0, 2 }, "q_split", "0 in target shape past the input rank")]
    [InlineData(new long[] { 1, 8, 2, 2, 4 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { 1, 2, 8, 8 }, "q_heads", "moves a leading (batch) axis")]
    public void A_bad_split_reshape_is_one_error_naming_the_node(long[] spec, string node, string reason)
    {
        using var dir = new TempDir();
        var path = new Mha { QSplit = spec }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, node, reason);
    }

    /// <summary>A Reshape of a head view that is no merge of the heads (it would move data).</summary>
    [Theory]
    [InlineData(new long[] { 1, 2, 64 })]
    [InlineData(new long[] { 1, 2, 8, 8 })]
    [InlineData(new long[] { 2, 8, 8 })]
    public void A_reshape_of_transposed_heads_is_one_error_naming_the_node(long[] spec)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 1, 8, 16);
        var h = TransposeBy(b, ReshapeTo(b, x, "split", 1, 8, 2, 8), "heads", [0, 2, 1, 3]);
        var y = ReshapeTo(b, h, "bad", spec);
        var path = Save(dir, b, b.Node("MatMul", [y, y], "mm"), 1, [1, 1, 1]);
        Refused(dir, path, "bad", "only reshapes that keep the features");
    }

    // ---- Transpose perms ----

    [Theory]
    [InlineData(new long[] { 0, 2, 2, 3 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { 0, 2, 1, 4 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { 0, 2, 1 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { 0, 2, 1, 3, 4 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { -1, 2, 1, 3 }, "q_heads", "is not a permutation")]
    [InlineData(new long[] { 1, 0, 2, 3 }, "q_heads", "moves a leading (batch) axis")]
    [InlineData(new long[] { 0, 1, 3, 2 }, "q_heads", "gives the layout tdh")]
    [InlineData(new long[] { 0, 3, 1, 2 }, "q_heads", "gives the layout dth")]
    [InlineData(new long[] { 0, 1, 2, 3 }, "scores", "shape mismatch")]
    public void A_bad_head_transpose_is_one_error_naming_the_node(long[] perm, string node, string reason)
    {
        using var dir = new TempDir();
        var path = new Mha { Batch = 2, QPerm = perm }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, node, reason);
    }

    [Theory]
    [InlineData(new long[] { 0, 1, 3, 2 }, "relu", "changed layout")]  // back to K's heads: a view the Relu cannot take
    [InlineData(new long[] { 0, 2, 1, 3 }, "k_again", "gives the layout dht")]
    public void A_further_transpose_of_k_heads_is_a_view_or_one_error(long[] extra, string node, string reason)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 1, 8, 16);
        var k = TransposeBy(b, ReshapeTo(b, x, "split", 1, 8, 2, 8), "k_heads", [0, 2, 3, 1]);
        var y = TransposeBy(b, k, "k_again", extra);
        var path = Save(dir, b, b.Node("Relu", [y], "relu"), S, [1, 2, 8, 8]);
        Refused(dir, path, node, reason);
    }

    [Theory]
    [InlineData(null)]  // no perm: reverses every axis, the batch's too
    [InlineData(new long[] { 3, 2, 1, 0 })]
    [InlineData(new long[] { 0, 3, 2, 1 })]
    public void A_transpose_of_4d_heads_that_gives_an_unsupported_layout_is_one_error(long[]? perm)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 1, 8, 16);
        var h = TransposeBy(b, ReshapeTo(b, x, "split", 1, 8, 2, 8), "odd", perm);
        var path = Save(dir, b, b.Node("MatMul", [h, h], "mm"), 1, [1, 1, 1]);
        Refused(dir, path, "odd", "Transpose of an activation");
    }

    /// <summary>Every perm of the split Q: the head transpose compiles, every other is one clean error (never an internal one).</summary>
    [Fact]
    public void Every_perm_of_the_split_query_is_compiled_or_one_clean_error()
    {
        var perms = Permutations([0, 1, 2, 3]).ToList();
        Assert.Equal(24, perms.Count);
        foreach (var perm in perms)
        {
            using var dir = new TempDir();
            var path = new Mha { QPerm = perm }.Build().Save(dir.File("m.onnx"));
            var error = CleanFailure.Run(dir, Compile(dir, path), mayPass: true, "m.onnx");
            Assert.True((error is null) == perm.SequenceEqual([0, 2, 1, 3]), $"perm [{string.Join(",", perm)}]: {error ?? "compiled"}");
        }
    }

    static IEnumerable<long[]> Permutations(long[] xs) => xs.Length <= 1 ? [xs]
        : xs.SelectMany((x, i) => Permutations([.. xs[..i], .. xs[(i + 1)..]]).Select(rest => new[] { x }.Concat(rest).ToArray()));

    /// <summary>Random attention models, each a small change of a valid one (a split entry, a perm, the heads, a mask, the
    /// softmax axis, the array): every one compiles or is one clean error, and one that compiles has ONNX's output shape and
    /// agrees with ONNX semantics within two quanta (the softmax unit's probabilities are within one code of ONNX's, and P·V
    /// sums a row's of them: seed 2's causal B 2, T 6, H 4 model has one element 2 quanta off).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_changes_of_attention_compile_correctly_or_fail_cleanly(int seed)
    {
        var rng = new Random(seed);
        T Pick<T>(params T[] xs) => xs[rng.Next(xs.Length)];
        long[] Mutate(long[] xs, Func<long> entry) { var ys = xs.ToArray(); ys[rng.Next(ys.Length)] = entry(); return ys; }
        int compiled = 0;
        for (int n = 0; n < 60; n++)
        {
            int heads = Pick(1, 2, 4), tokens = Pick(3, 4, 6, 8), batch = Pick(1, 2), d = heads * Pick(2, 4, 8);
            var m = new Mha { Batch = batch, Tokens = tokens, D = d, Heads = heads };
            long[] split = [-1, tokens, heads, d / heads];
            var changes = new List<string>();
            for (int k = rng.Next(2); k < 2; k++)
            {
                string change = Pick("none", "split", "ksplit", "perm", "kperm", "vperm", "operm", "vsplit", "mask", "maskqdq", "axis", "merge", "kscale");
                changes.Add(change);
                m = change switch
                {
                    "split" => m with { QSplit = Mutate(m.QSplit ?? split, () => Pick(-1L, 0, 1, 2, tokens, heads, 2L * heads, d)) },
                    "ksplit" => m with { KSplit = Mutate(m.KSplit ?? split, () => Pick(-1L, 0, 1, 2, tokens, heads, 2L * heads, d)) },
                    "perm" => m with { QPerm = Mutate(m.QPerm, () => Pick(0L, 1, 2, 3)) },
                    "kperm" => m with { KPerm = Permutations([0, 1, 2, 3]).ElementAt(rng.Next(24)) },
                    "vperm" => m with { VPerm = Permutations([0, 1, 2, 3]).ElementAt(rng.Next(24)) },
                    "operm" => m with { OPerm = Permutations([0, 1, 2, 3]).ElementAt(rng.Next(24)) },
                    "vsplit" => m with { VSplit = [-1, tokens, Pick(1, 2, 4), d / Pick(1, 2, 4)] },
                    "mask" or "maskqdq" => m with
                    {
                        MaskQdq = change == "maskqdq",
                        Mask = Pick(0, 1, 2, 3) switch
                        {
                            0 => Causal(tokens),
                            1 => ([1, heads, tokens, tokens], Enumerable.Range(0, heads * tokens * tokens).Select(i => i % tokens == i / tokens % tokens || rng.Next(2) == 0 ? 0 : -1e4).ToArray(), DType.Float32),
                            2 => ([Pick(1, 2), Pick(1, heads), tokens, Pick(tokens, 1)], null!, DType.Float32),
                            _ => ([tokens, tokens], Enumerable.Range(0, tokens * tokens).Select(_ => Pick(0.0, -1e4, 0.25)).ToArray(), DType.Float32),
                        },
                    },
                    "axis" => m with { SoftmaxAxis = Pick(-1L, 0, 1, 2, 3, -4), Mask = rng.Next(2) == 0 ? Causal(tokens) : null },
                    "merge" => m with { Merge = Mutate(m.Merge ?? [-1, tokens, d], () => Pick(-1L, 0, tokens, d, 2L * d)) },
                    "kscale" => m with { KtScale = Pick(S, 2 * S) },
                    _ => m,
                };
                if (m.Mask is ({ } shape, null, var type))
                    m = m with { Mask = (shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(i => i % shape[^1] == 0 || rng.Next(3) > 0 ? 0 : -1e4).ToArray(), type) };
            }
            string changed = string.Join(", ", changes);
            int r = Pick(1, 2, 4), cols = r * Pick(1, 2);
            using var dir = new TempDir();
            var path = m.Build().Save(dir.File("m.onnx"));
            string what = $"variant {n} ({changed}) of seed {seed}, {r}x{cols} array: {m.Describe()}";
            string? error;
            try { error = CleanFailure.Run(dir, Compile(dir, path, Config(r, cols)), mayPass: true, "m.onnx"); }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"{what}: {e.Message}"); }
            if (error is not null)
            {
                Assert.False(error.Contains("IR verifier"), $"{what}: {error}");
                continue;
            }
            compiled++;
            if (m.MaskQdq) continue;  // ONNX saturates the masked scores there: its masked probabilities are not 0
            var c = Flow.Compile(path, new HwConfig { ArrayRows = r, ArrayCols = cols, Scheduler = "greedy" });
            var x = m.Sample(n);
            var hw = HardwareModel.Outputs(c.Graph, [x])[0];
            var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
            Assert.True(onnx.Shape.SequenceEqual(hw.Shape), $"{what}: shape {ShapeUtil.Format(hw.Shape)}, ONNX {ShapeUtil.Format(onnx.Shape)}");
            double worst = hw.Data.Zip(onnx.Data).Max(p => Math.Abs(p.First - p.Second)) / S;
            Assert.True(worst <= 2.0001, $"{what}: {worst:F2} quanta from ONNX semantics");
        }
        Assert.True(compiled >= 5, $"only {compiled} of 60 compiled");
    }

    // ---- a view taken by an op that is no product ----

    [Theory]
    [InlineData("Relu")]
    [InlineData("Softmax")]
    [InlineData("Sigmoid")]
    [InlineData("Add")]
    [InlineData("ReduceMean")]
    [InlineData("MatMulWeights")]
    [InlineData("output")]
    [InlineData("output after qdq")]
    public void A_head_view_taken_by_an_op_that_is_no_product_is_one_error_naming_it(string taker)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 1, 8, 16);
        var h = TransposeBy(b, ReshapeTo(b, x, "split", 1, 8, 2, 8), "heads", [0, 2, 1, 3]);
        string path;
        if (taker.StartsWith("output"))
        {
            if (taker != "output") h = Qdq(b, h, S, "hq");
            b.Output(h, DType.Float32, 1, 2, 8, 8);
            path = b.Save(dir.File("m.onnx"));
            Refused(dir, path, "", "graph output", "changed layout");
            return;
        }
        var y = taker switch
        {
            "Add" => b.Node("Add", [h, h], "taker"),
            "Softmax" => b.Node("Softmax", [h], "taker", ("axis", -1)),
            "ReduceMean" => b.Node("ReduceMean", [h], "taker", ("axes", new long[] { -2 })),
            "MatMulWeights" => b.Node("MatMul", [h, b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [8, 8], new double[64]), b.Init("ws", DType.Float32, [], 0.01)], "w_dq")], "taker"),
            _ => b.Node(taker, [h], "taker"),
        };
        path = Save(dir, b, y, S, [1, 2, 8, 8]);
        Refused(dir, path, "taker", "changed layout");
    }

    // ---- products of two activations ----

    [Fact]
    public void Split_q_times_untransposed_k_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = new Mha { KPerm = [0, 2, 1, 3] }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, "scores", "recognized only in part");
    }

    [Fact]
    public void Different_heads_for_q_and_k_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = new Mha { KSplit = [-1, 8, 4, 4] }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, "scores", "shape mismatch");
    }

    [Fact]
    public void Probabilities_with_other_heads_than_v_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = new Mha { VSplit = [-1, 8, 4, 4], OutShape = [1, 8, 16] }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, "pv", "shape mismatch", "leading dimensions differ");
    }

    [Fact]
    public void A_qdq_pair_at_other_parameters_after_a_layout_op_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var path = new Mha { KtScale = 3.0 / 255 }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, "k_heads_qdq_quant", "other parameters than its own");
    }

    [Fact]
    public void A_product_with_a_1d_activation_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8);
        var z = Act(b, "z", 8, 4);
        var path = Save(dir, b, b.Node("MatMul", [x, z], "vm"), S, [4]);
        Refused(dir, path, "vm", "1-D");
    }

    [Fact]
    public void A_gemm_of_two_activations_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8, 8);
        var path = Save(dir, b, b.Node("Gemm", [x, Qdq(b, TransposeBy(b, x, "t", [1, 0]), S, "t")], "g"), S, [8, 8]);
        Refused(dir, path, "g", "write it as MatMul");
    }

    /// <summary>A 1-D activation keeps ONNX's shape through a Reshape with 0 entries (it is no [1, n]): [8] to [8, 1], which
    /// moves data between rows: refused, unless the host does it (a graph input's quantization read by nothing else, which the
    /// host then writes as [8, 1]).</summary>
    [Fact]
    public void A_reshape_of_a_1d_activation_copies_its_own_dimension_for_0()
    {
        foreach (bool hostInput in new[] { true, false })
        {
            using var dir = new TempDir();
            var b = new OnnxBuilder();
            var x = Act(b, "x", 8);
            if (!hostInput) b.Node("Identity", [x], "also");   // a second reader of the input: no longer the host's to reshape
            var y = ReshapeTo(b, x, "r", 0, -1);
            var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [1, 4], 1, -1, 2, 3), b.Init("ws", DType.Float32, [], 0.5)], "w_dq");
            var path = Save(dir, b, b.Node("MatMul", [y, w], "mm"), 4.0 / 255, [8, 4]);
            if (hostInput) Assert.Equal([8, 1], Flow.Compile(path, HwConfig.Default).Graph.Inputs.Single().Type.Shape);
            else Refused(dir, path, "r", "[8] -> [8x1] moves data between rows");
        }
    }

    // ---- masks ----

    static (int[], double[], DType) Causal(int t, double masked = -1e4) => ([t, t], Enumerable.Range(0, t * t).Select(i => i % t > i / t ? masked : 0.0).ToArray(), DType.Float32);

    [Theory]
    [InlineData("mixed", "softmax", "no attention mask")]
    [InlineData("zeros", "softmax", "no attention mask")]
    [InlineData("int", "mask_add", "")]
    [InlineData("rank 1", "mask_add", "does not match the scores")]
    [InlineData("rank 5", "mask_add", "does not match the scores")]
    [InlineData("per sequence", "mask_add", "does not match the scores")]
    [InlineData("axis 0", "softmax", "axis 0 of masked scores")]
    [InlineData("axis 2", "softmax", "axis 2 of masked scores")]
    public void A_bad_mask_is_one_error_naming_the_node(string kind, string node, string reason)
    {
        using var dir = new TempDir();
        var m = new Mha { Batch = 2 };
        m = kind switch
        {
            "mixed" => m with { Mask = ([8, 8], Enumerable.Range(0, 64).Select(i => (i % 3) switch { 0 => 0.0, 1 => -1e4, _ => 5.0 }).ToArray(), DType.Float32) },
            "zeros" => m with { Mask = ([8, 8], new double[64], DType.Float32) },
            "int" => m with { Mask = Causal(8) with { Item3 = DType.Int64 } },
            "rank 1" => m with { Mask = ([8], Enumerable.Range(0, 8).Select(i => i < 6 ? 0.0 : -1e4).ToArray(), DType.Float32) },
            "rank 5" => m with { Mask = ([1, 1, 2, 8, 8], Enumerable.Range(0, 128).Select(i => i % 8 > i / 8 % 8 ? -1e4 : 0.0).ToArray(), DType.Float32) },
            "per sequence" => m with { Mask = ([2, 1, 8, 8], Enumerable.Range(0, 128).Select(i => i % 8 > i / 8 % 8 ? -1e4 : 0.0).ToArray(), DType.Float32) },
            "axis 0" => m with { Mask = Causal(8), SoftmaxAxis = 0 },
            _ => m with { Mask = Causal(8), SoftmaxAxis = 2 },
        };
        var path = m.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, node, reason.Length == 0 ? Array.Empty<string>() : new[] { reason });
    }

    /// <summary>The validator refuses a stored NaN or Inf (a -Inf mask too): one clean error naming the initializer.</summary>
    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.NegativeInfinity)]
    public void A_mask_with_nan_or_inf_is_one_clean_error(double masked)
    {
        using var dir = new TempDir();
        var path = new Mha { Mask = Causal(8, masked) }.Build().Save(dir.File("m.onnx"));
        Refused(dir, path, "mask", "NaN or Inf", "such as -10^4");
    }

    /// <summary>A mask added to Q·Kᵀ before the scores are quantized: the product has no quantization to requantize to yet.</summary>
    [Fact]
    public void A_mask_on_unquantized_scores_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8, 16);
        var s = b.Node("MatMul", [x, Qdq(b, TransposeBy(b, x, "kt", [1, 0]), S, "kt")], "scores");
        var (shape, values, _) = Causal(8);
        var y = b.Node("Add", [s, b.Init("mask", DType.Float32, shape, values)], "mask_add");
        var path = Save(dir, b, b.Node("Softmax", [y], "softmax", ("axis", -1)), 1.0 / 256, [8, 8]);
        Refused(dir, path, "mask_add", "added to the product 'scores' before it is quantized");
    }

    /// <summary>A mask-like Add on an activation that is no softmax's scores.</summary>
    [Theory]
    [InlineData("relu", "relu")]
    [InlineData("qdq relu", "relu")]
    [InlineData("output", "")]
    [InlineData("qdq output", "")]
    [InlineData("matmul", "mm")]
    public void A_mask_on_no_scores_is_one_error_naming_the_node(string after, string node)
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8, 8);
        var (shape, values, _) = Causal(8);
        var y = b.Node("Add", [x, b.Init("mask", DType.Float32, shape, values)], "mask_add");
        if (after.StartsWith("qdq")) y = Qdq(b, y, S, "mq");
        string path;
        if (after.EndsWith("output"))
        {
            b.Output(y, DType.Float32, 8, 8);
            path = b.Save(dir.File("m.onnx"));
            Refused(dir, path, "", "graph output", "masked by the Add 'mask_add'");
            return;
        }
        y = after == "matmul" ? b.Node("MatMul", [y, x], "mm") : b.Node("Relu", [y], "relu");
        path = Save(dir, b, y, S, [8, 8]);
        Refused(dir, path, node, "masked by the Add 'mask_add'", "only a Softmax");
    }

    [Fact]
    public void A_mask_on_a_1d_activation_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        var x = Act(b, "x", 8);
        var y = b.Node("Add", [x, b.Init("mask", DType.Float32, [8], 0, 0, 0, 0, 0, 0, -1e4, -1e4)], "mask_add");
        var path = Save(dir, b, b.Node("Softmax", [y], "softmax", ("axis", -1)), 1.0 / 256, [8]);
        Refused(dir, path, "mask_add", "attention scores");
    }

    // ---- mean pooling ----

    static string Pool(TempDir dir, int[] shape, int opset, long[]? axes, int keepdims, int[] outShape)
    {
        var b = new OnnxBuilder(opset);
        var x = Act(b, "x", shape);
        var y = axes is null ? b.Node("ReduceMean", [x], "pool", ("keepdims", keepdims))
            : opset >= 18 ? b.Node("ReduceMean", [x, b.Init("axes", DType.Int64, [axes.Length], axes.Select(a => (double)a).ToArray())], "pool", ("keepdims", keepdims))
            : b.Node("ReduceMean", [x], "pool", ("axes", axes), ("keepdims", keepdims));
        return Save(dir, b, y, 1.0 / 255, outShape);
    }

    [Theory]
    [InlineData(new[] { 2, 8, 16 }, 13, -2, 0, new[] { 2, 16 })]
    [InlineData(new[] { 2, 8, 16 }, 13, -2, 1, new[] { 2, 1, 16 })]
    [InlineData(new[] { 2, 8, 16 }, 18, 1, 0, new[] { 2, 16 })]
    [InlineData(new[] { 1, 6, 16 }, 18, -2, 1, new[] { 1, 1, 16 })]
    [InlineData(new[] { 8, 16 }, 13, 0, 0, new[] { 16 })]
    [InlineData(new[] { 8, 16 }, 13, -2, 1, new[] { 1, 16 })]
    [InlineData(new[] { 1, 16 }, 13, -2, 0, new[] { 16 })]
    public void Mean_pooling_over_tokens_compiles_with_onnx_shapes_and_agrees(int[] shape, int opset, long axis, int keepdims, int[] outShape)
    {
        using var dir = new TempDir();
        var path = Pool(dir, shape, opset, [axis], keepdims, outShape);
        var x = new Mha { Input = shape }.Sample(7);
        var c = Flow.Compile(path, Fast);
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        Assert.Equal(outShape, onnx.Shape);
        Assert.Equal(onnx.Shape, hw.Shape);
        Assert.True(hw.Data.Zip(onnx.Data).All(p => Math.Abs(p.First - p.Second) <= 1.0001 / 255));
    }

    [Theory]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { 0 }, 1)]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { -3 }, 0)]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { 1, 2 }, 1)]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { -2, -2 }, 1)]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { 5 }, 1)]
    [InlineData(new[] { 2, 8, 16 }, 18, new long[] { 0 }, 0)]
    [InlineData(new[] { 2, 8, 16 }, 13, null, 1)]
    [InlineData(new[] { 16 }, 13, new long[] { -2 }, 1)]
    [InlineData(new[] { 2, 8, 16 }, 13, new long[] { -1 }, 0)]
    public void Mean_pooling_over_another_axis_is_one_error_naming_the_node(int[] shape, int opset, long[]? axes, int keepdims)
    {
        using var dir = new TempDir();
        var path = Pool(dir, shape, opset, axes, keepdims, [1]);
        var line = CleanFailure.Assert(dir, Compile(dir, path), "m.onnx", "'pool'");
        Assert.DoesNotContain("IR verifier", line);
    }

    // ---- configurations the engines cannot take ----

    static string Config(int rows, int cols) => $$"""{ "arrayRows": {{rows}}, "arrayCols": {{cols}}, "scheduler": "greedy" }""";

    [Theory]
    [InlineData(1, 8, 16, 4, 8, 8, "scores", "a head of 4 features cannot be tiled")]
    [InlineData(1, 8, 24, 2, 8, 16, "scores", "a head of 12 features cannot be tiled")]
    public void A_head_the_array_cannot_tile_is_one_error_naming_the_node(int batch, int tokens, int d, int heads, int rows, int cols,
        string node, string reason)
    {
        using var dir = new TempDir();
        var path = new Mha { Batch = batch, Tokens = tokens, D = d, Heads = heads }.Build().Save(dir.File("m.onnx"));
        var line = CleanFailure.Assert(dir, Compile(dir, path, Config(rows, cols)), "m.onnx", $"'{node}'", reason);
        Assert.DoesNotContain("IR verifier", line);
    }

    /// <summary>Mean pooling of 2 sequences of 6 tokens at 4 array rows compiles (the compile runs the program at the instruction
    /// level against the golden model).</summary>
    [Fact]
    public void Mean_pooling_of_sequences_that_are_no_multiple_of_the_array_rows_compiles()
    {
        using var dir = new TempDir();
        var path = Pool(dir, [2, 6, 16], 13, [-2], 0, [2, 16]);
        var (exit, _, stderr) = CliRunner.Run([.. Compile(dir, path), "-o", dir.File("out")]);
        Assert.True(exit == 0, stderr);
    }

    /// <summary>A causal mask of 6 rows over 2 heads of 6 tokens: its rows do not fall on 4-row blocks.</summary>
    [Fact]
    public void A_mask_whose_rows_the_array_cannot_tile_is_one_error_naming_the_softmax()
    {
        using var dir = new TempDir();
        var path = new Mha { Tokens = 6, Mask = Causal(6) }.Build().Save(dir.File("m.onnx"));
        CleanFailure.Assert(dir, Compile(dir, path), "m.onnx", "'softmax'", "multiple of arrayRows = 4");
    }

    /// <summary>A single head written as a split into 1 head ([.., T, 1, D], as torch writes it for nhead = 1) compiles like any
    /// split and agrees with ONNX semantics.</summary>
    [Fact]
    public void A_split_into_one_head_compiles_and_agrees()
    {
        using var dir = new TempDir();
        var m = new Mha { Heads = 1 };
        var path = m.Build().Save(dir.File("m.onnx"));
        var c = Agrees(path, m.Sample(3), S);
        Assert.All(c.Graph.Ops.OfType<QMatMul>(), q => Assert.Equal(1, q.Heads));
    }
}
