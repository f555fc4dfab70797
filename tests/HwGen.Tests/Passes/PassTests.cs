using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Reference;
using HwGen.Tests.Support;

namespace HwGen.Tests.Passes;

/// <summary>Each pass on its own; every rewrite is also checked to compute the same outputs before and after.</summary>
public sealed class PassTests
{
    static Graph Lowered(OnnxBuilder b, int? batch = null)
    {
        using var dir = new TempDir();
        var g = LowerOnnxToIr.Run(OnnxLoader.Load(b.Save(dir.File("m.onnx"))), batch);
        Verifier.Verify(g, "test");
        return g;
    }

    static Tensor[] Eval(Graph g, Tensor x) => HardwareModel.Outputs(g, [x]);

    /// <summary>torch-style graph: QGemm, then Relu in its own DQ/Q pair with the same parameters.</summary>
    static Graph TorchStyleGraph()
    {
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 3, 4);
        var q = b.Node("QuantizeLinear", ["x", b.Init("s", DType.Float32, [], 0.02), b.Init("z", DType.UInt8, [], 128)]);
        var dq = b.Node("DequantizeLinear", [q, "s", "z"]);
        var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [4, 2], 1, -2, 3, -4, 5, -6, 7, -8), b.Init("ws", DType.Float32, [], 0.05), b.Init("wz", DType.Int8, [], 0)]);
        var mm = b.Node("MatMul", [dq, w]);
        var y = b.Node("QuantizeLinear", [mm, b.Init("ys", DType.Float32, [], 0.01), b.Init("yz", DType.UInt8, [], 100)]);
        var ydq = b.Node("DequantizeLinear", [y, "ys", "yz"]);
        var r = b.Node("Relu", [ydq]);
        var rq = b.Node("QuantizeLinear", [r, "ys", "yz"]);
        var o = b.Node("DequantizeLinear", [rq, "ys", "yz"]);
        b.Output(o, DType.Float32, 3, 2);
        return Lowered(b);
    }

    [Fact]
    public void Lowering_folds_qdq_pairs_into_integer_ops()
    {
        var g = TorchStyleGraph();
        Assert.Equal(["hw.quantize", "hw.qgemm", "hw.qclamp", "hw.dequantize"], g.Ops.Select(o => o.Mnemonic));
        var gemm = g.Ops.OfType<QGemm>().Single();
        Assert.Equal(0, gemm.InputZeroPoint);          // uint8 zero point 128 becomes int8 zero point 0
        Assert.Equal(-28, gemm.OutputZeroPoint);       // 100 - 128
        Assert.Equal(0.02 * 0.05 / 0.01, gemm.RealMultiplier[0], 6);
    }

    [Fact]
    public void FuseClampIntoGemm_moves_relu_into_the_clamp_and_keeps_the_results()
    {
        var g = TorchStyleGraph();
        var x = QdqModels.Input(5, 3, 4);
        new InferShapes().Run(g, HwConfig.Default);
        var before = Eval(g, x);
        new FuseClampIntoGemm().Run(g, HwConfig.Default);
        Verifier.Verify(g, "FuseClampIntoGemm");
        Assert.DoesNotContain(g.Ops, o => o is QClamp);
        Assert.Equal(-28, g.Ops.OfType<QGemm>().Single().ClampMin);
        Assert.Equal(before[0].Data, Eval(g, x)[0].Data);
    }

    [Fact]
    public void Clip_on_a_dequantized_tensor_lowers_to_a_clamp_and_fuses()
    {
        // torch's ReLU6 pattern: DQ -> Clip(0, 6) -> Q with the same parameters.
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, 3);
        var q = b.Node("QuantizeLinear", ["x", b.Init("s", DType.Float32, [], 0.02), b.Init("z", DType.Int8, [], 0)]);
        var dq = b.Node("DequantizeLinear", [q, "s", "z"]);
        var w = b.Node("DequantizeLinear", [b.Init("w", DType.Int8, [3, 2], 10, -20, 30, -40, 50, -60), b.Init("ws", DType.Float32, [], 0.5), b.Init("wz", DType.Int8, [], 0)]);
        var y = b.Node("QuantizeLinear", [b.Node("MatMul", [dq, w]), b.Init("ys", DType.Float32, [], 0.05), b.Init("yz", DType.Int8, [], -10)]);
        var c = b.Node("Clip", [b.Node("DequantizeLinear", [y, "ys", "yz"]), b.Init("lo", DType.Float32, [], 0), b.Init("hi", DType.Float32, [], 6)]);
        var o = b.Node("DequantizeLinear", [b.Node("QuantizeLinear", [c, "ys", "yz"]), "ys", "yz"]);
        b.Output(o, DType.Float32, 2, 2);
        var g = Lowered(b);
        var clamp = g.Ops.OfType<QClamp>().Single();
        Assert.Equal((-10, 110), (clamp.Min, clamp.Max));  // 0 / 0.05 - 10, 6 / 0.05 - 10
        var x = QdqModels.Input(3, 2, 3);
        var before = Eval(g, x);
        Pipeline.Run(g, HwConfig.Default, [new FuseClampIntoGemm()]);
        Assert.Equal((-10, 110), (g.Ops.OfType<QGemm>().Single().ClampMin, g.Ops.OfType<QGemm>().Single().ClampMax));
        Assert.Equal(before[0].Data, Eval(g, x)[0].Data);
    }

    [Fact]
    public void FuseClampIntoGemm_leaves_a_gemm_with_other_users_alone_and_requantizes_at_multiplier_1()
    {
        var g = TorchStyleGraph();
        var gemm = g.Ops.OfType<QGemm>().Single();
        g.Outputs.Add(gemm.Output);  // a second use of the pre-ReLU value
        var x = QdqModels.Input(5, 3, 4);
        Pipeline.Run(g, HwConfig.Default, [new InferShapes(), new LegalizeRequant()]);   // the QGemm as the hardware computes it
        var before = Eval(g, x);
        Pipeline.Run(g, HwConfig.Default, [new FuseClampIntoGemm(), new LegalizeRequant()]);   // and the requantization in fixed point
        Assert.Equal((-128, 127), (g.Ops.OfType<QGemm>().Single().ClampMin, g.Ops.OfType<QGemm>().Single().ClampMax));
        var r = Assert.Single(g.Ops.OfType<QRequant>());
        Assert.Equal((1.0, -28, 127), (r.RealMultiplier, r.ClampMin, r.ClampMax));
        var after = Eval(g, x);
        Assert.Equal(before[0].Data, after[0].Data);
        Assert.Equal(before[1].Data, after[1].Data);
        Assert.Contains(before[1].Data, v => v < 0);   // the clamp has work to do
    }

    [Fact]
    public void LegalizeRequant_is_exact_fixed_point_and_within_one_quantum_of_the_real_multiplier()
    {
        var g = Lowered(QdqModels.Mlp(7, 8, [24, 16, 8], QdqStyle.GemmRelu), 8);
        var x = QdqModels.Input(8, 8, 24);
        var ideal = HardwareModel.Run(g, [x]);
        new LegalizeRequant().Run(g, HwConfig.Default);
        Verifier.Verify(g, "LegalizeRequant");
        var gemms = g.Ops.OfType<QGemm>().ToList();
        Assert.All(gemms, q => Assert.True(q.RequantLegalized));
        foreach (var q in gemms)
            for (int n = 0; n < q.N; n++)
                Assert.True(Math.Abs(q.Multiplier[n] * Math.Pow(2, -q.Shift[n]) / q.RealMultiplier[n] - 1) < 1e-9);
        // Per layer, on the same inputs: legalized and real-multiplier results differ by at most one quantum.
        var fixedPoint = HardwareModel.Run(g, [x]);
        foreach (var q in gemms)
        {
            var a = HwGen.Rtl.Engines.Dense.DenseEngine.Kernel(q, ideal[q.Input]);
            var b = HwGen.Rtl.Engines.Dense.DenseEngine.Kernel(q with { Multiplier = [], Shift = [] }, ideal[q.Input]);
            Assert.True(a.Data.Zip(b.Data).All(p => Math.Abs(p.First - p.Second) <= 1));
        }
        Assert.Equal(ideal.Count, fixedPoint.Count);
    }

    [Fact]
    public void LegalizeRequant_rejects_an_accumulator_that_can_overflow()
    {
        var g = Lowered(QdqModels.Mlp(7, 1, [8, 4], QdqStyle.GemmRelu));
        var q = g.Ops.OfType<QGemm>().Single();
        g.Replace(q, q with { Bias = q.Bias.Select(_ => int.MaxValue - 10).ToArray() });
        var e = Assert.Throws<HwGenException>(() => new LegalizeRequant().Run(g, HwConfig.Default));
        Assert.Contains("overflow", e.Message);
    }

    [Fact]
    public void SelectEngines_and_TileToEngine_place_and_tile_every_gemm()
    {
        var g = Lowered(QdqModels.Mlp(3, 10, [12, 20, 3], QdqStyle.MatMulAdd), 10);
        var cfg = new HwConfig { ArrayRows = 4, ArrayCols = 8 };
        Pipeline.Run(g, cfg, Pipeline.Passes);
        var gemms = g.Ops.OfType<QGemm>().ToList();
        Assert.All(gemms, q => Assert.Equal("dense", q.Engine));
        Assert.Equal(new GemmTiling(4, 8, 3, 3), gemms[0].Tiling);
        Assert.Equal(new GemmTiling(4, 8, 3, 1), gemms[1].Tiling);
    }

    [Fact]
    public void SelectEngines_rejects_an_op_without_an_engine()
    {
        var g = TorchStyleGraph();
        var gemm = g.Ops.OfType<QGemm>().Single();
        g.Outputs.Add(gemm.Output);  // keeps the QClamp unfused (FuseClampIntoGemm would make it a QRequant: not run)
        var e = Assert.Throws<HwGenException>(() => new SelectEngines().Run(g, HwConfig.Default));
        Assert.Contains("hw.qclamp", e.Message);
    }

    [Fact]
    public void Verifier_rejects_use_before_definition_and_wrong_result_types()
    {
        var g = TorchStyleGraph();
        var ops = g.Ops.ToList();
        (g.Ops[1], g.Ops[2]) = (g.Ops[2], g.Ops[1]);
        Assert.Contains("before it is defined", Assert.Throws<HwGenException>(() => Verifier.Verify(g, "swap")).Message);
        g.Ops.Clear();
        g.Ops.AddRange(ops);
        var gemm = g.Ops.OfType<QGemm>().Single();
        gemm.Output.Type = gemm.Output.Type with { Shape = [3, 5] };
        Assert.Contains("differs from inferred", Assert.Throws<HwGenException>(() => Verifier.Verify(g, "shape")).Message);
    }

    [Fact]
    public void Pipeline_dumps_the_ir_after_every_pass()
    {
        using var dir = new TempDir();
        var model = OnnxLoader.Load(QdqModels.Mlp(1, 2, [8, 4], QdqStyle.GemmRelu).Save(dir.File("m.onnx")));
        var names = new List<string>();
        Pipeline.Compile(model, HwConfig.Default, (n, g) => names.Add(n + ":" + Printer.Print(g).Length));
        Assert.Equal(Pipeline.Passes.Count + 1, names.Count);
        Assert.StartsWith("00_LowerOnnxToIr", names[0]);
    }
}
