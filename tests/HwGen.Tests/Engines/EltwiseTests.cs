using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Eltwise;
using HwGen.Sim;
using HwGen.Tests.Reference;
using HwGen.Tests.Support;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Engines;

/// <summary>
/// The two-source element-wise engine and the import of a residual Add or Sub between QDQ pairs
/// (<see cref="ResidualModels"/>, as ONNX Runtime's quantizer writes them): the IR op, the golden model against ONNX
/// semantics and ONNX Runtime, and the RTL bit-exact in Verilator and Icarus with both operand placements (different
/// banks: a line per cycle; one bank: serial).
/// </summary>
public sealed class EltwiseTests
{
    static readonly HwConfig Small = new() { ArrayRows = 2, ArrayCols = 4, PortBytes = 4, ScratchpadBytes = 2048 };

    [Theory]
    [InlineData(1, false, false)]
    [InlineData(2, true, false)]
    [InlineData(1, false, true)]
    public void A_residual_imports_as_one_qadd_on_the_eltwise_engine(int layers, bool subtract, bool relu)
    {
        using var dir = new TempDir();
        var path = ResidualModels.Build(3, 5, 8, layers, subtract, relu).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, Small, batch: 5);
        var add = Assert.Single(c.Graph.Ops.OfType<QAdd>());
        Assert.Equal(EltwiseEngine.Id, add.Engine);
        Assert.Equal(subtract, add.Multipliers![1] < 0);
        Assert.Equal(relu ? add.OutputZeroPoint : -128, add.ClampMin);
        // Ma·2^-S and |Mb|·2^-S approximate sa/sy and sb/sy to 15 significant bits.
        for (int i = 0; i < 2; i++)
            Assert.True(Math.Abs(add.Multipliers[i] * Math.Pow(2, -add.Shift!.Value) - add.RealMultipliers[i]) <= Math.Pow(2, -add.Shift.Value - 1) * 1.0001);
        Assert.Contains(c.Design.Program, i => i is EAdd e && e.Serial == (layers == 2));
    }

    /// <summary>The hardware model (b) against ONNX semantics (a) and ONNX Runtime: a fixed-point sum rounded half up
    /// against float sums rounded half to even, at most one output quantum apart.</summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void The_golden_model_agrees_with_onnx_semantics_and_onnx_runtime(bool subtract, bool relu)
    {
        using var dir = new TempDir();
        var path = ResidualModels.Build(7, 16, 12, 1, subtract, relu).Save(dir.File("m.onnx"));
        var x = QdqModels.Input(8, 16, 12);
        var c = Flow.Compile(path, HwConfig.Default, batch: 16);
        Agreement.WithinOneQuantum(path, c, x, c.Design.OutputTensors.Single().Value.Type.Quant!.Scale, minDistinct: 10);
    }

    /// <summary>A ReLU between Q/DQ pairs with the sum's parameters after the Add (a QClamp of the QAdd's result) folds into
    /// the QAdd's clamp: no op is left without an engine.</summary>
    [Fact]
    public void A_relu_between_qdq_pairs_after_the_add_folds_into_its_clamp()
    {
        using var dir = new TempDir();
        var path = ResidualModels.Build(7, 16, 12, 1, reluBetweenQdq: true).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, HwConfig.Default, batch: 16);
        var add = Assert.Single(c.Graph.Ops.OfType<QAdd>());
        Assert.DoesNotContain(c.Graph.Ops, o => o is QClamp);
        Assert.Equal(add.OutputZeroPoint, add.ClampMin);
        Agreement.WithinOneQuantum(path, c, QdqModels.Input(8, 16, 12), add.OutputQuant.Scale, minDistinct: 10);
    }

    /// <summary>An activation scale 1024 times the output's leaves a shift of 4: a float constant of a few output quanta
    /// must not be quantized finer than 2^-4 of a quantum, where its multiplier (2^-5 · 2^4 = 0.5) would round to 1 and
    /// double it. At x = 0 the output is the constant's code.</summary>
    [Fact]
    public void A_float_constant_keeps_its_value_when_the_activation_ratio_leaves_a_small_shift()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 4, 8);
        var t = DType.Int8;
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 1.0, 0, t, "in"), 1.0, 0, t, "x");
        var c = new[] { -3, -2, -1, 0, 1, 2, 3, 3 }.Select(q => q / 1024.0).ToArray();
        var sum = b.Node("Add", [x, b.Init("c", DType.Float32, [8], c)], "bias_add");
        var o = QdqModels.Dq(b, QdqModels.Q(b, sum, 1.0 / 1024, 0, t, "y"), 1.0 / 1024, 0, t, "out");
        b.Output(o, DType.Float32, 4, 8);
        var path = b.Save(dir.File("m.onnx"));
        var comp = Flow.Compile(path, Small);
        var input = new Tensor(DType.Float32, [4, 8], new double[32]);
        var hw = HardwareModel.Outputs(comp.Graph, [input])[0];
        var onnx = OnnxEvaluator.Run(comp.Model, new Dictionary<string, Tensor> { ["x"] = input }).Values.Single();
        Assert.Equal(onnx.Data.Select(v => Math.Round(v * 1024)), hw.Data.Select(v => Math.Round(v * 1024)));
    }

    /// <summary>The kernel is the documented formula, with a rounding tie and both clamps.</summary>
    [Fact]
    public void Add_requantize_rounds_half_up_and_clamps()
    {
        // (3 - 1)·3 + (2 - 0)·1 = 8; 8 / 16 = 0.5 rounds up to 1; + 5.
        Assert.Equal(6, QuantMath.AddRequantize(3, 1, 3, 2, 0, 1, 4, 5, -128, 127));
        // (-1 - 1)·3 + (2 - 0)·-1 = -8; -8 / 16 = -0.5 rounds up to 0; + 5.
        Assert.Equal(5, QuantMath.AddRequantize(-1, 1, 3, 2, 0, -1, 4, 5, -128, 127));
        Assert.Equal(-128, QuantMath.AddRequantize(-128, 127, 30000, -128, 127, 30000, 1, 0, -128, 127));
        Assert.Equal(20, QuantMath.AddRequantize(127, -128, 30000, 127, -128, 30000, 1, 0, -128, 20));
    }

    [Theory]
    [InlineData("verilator", 1)]
    [InlineData("verilator", 2)]
    [InlineData("icarus", 1)]
    [InlineData("icarus", 2)]
    public void The_rtl_is_bit_exact_and_the_cycle_estimate_holds(string simulator, int layers)
    {
        using var dir = new TempDir();
        var path = ResidualModels.Build(11, 5, 8, layers, subtract: layers == 2).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, Small, batch: 5);
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(12, 5, 8)], path);
        Assert.True(File.Exists(dir.File("out/rtl/hwgen_eltwise_engine.v")));
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>Random shapes, scales, arrays and operand placements, ReLU or not, Add or Sub: bit-exact in the estimated cycles.</summary>
    [Theory]
    [InlineData("verilator", 101)]
    [InlineData("verilator", 102)]
    [InlineData("verilator", 103)]
    [InlineData("icarus", 104)]
    [InlineData("icarus", 105)]
    public void Random_residuals_are_bit_exact(string simulator, int seed)
    {
        var rng = new Random(seed);
        int rows = rng.Next(1, 8), features = rng.Next(3, 14), layers = rng.Next(1, 3);
        var (r, cols) = new[] { (1, 2), (2, 4), (4, 4), (2, 2) }[rng.Next(4)];
        var cfg = new HwConfig { ArrayRows = r, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 4096 };
        using var dir = new TempDir();
        var path = ResidualModels.Build(seed, rows, features, layers, subtract: rng.Next(2) == 1, reluAfter: rng.Next(2) == 1).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, cfg, batch: rows);
        Assert.Single(c.Graph.Ops.OfType<QAdd>());
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(seed, rows, features)], path);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>A constant operand broadcast over the batch (a positional embedding): its codes lie off chip and load like an
    /// input's; quantized constants keep their codes, float ones are quantized at 2^-k of the output scale.</summary>
    [Theory]
    [InlineData(ConstantStyle.Quantized)]
    [InlineData(ConstantStyle.Float)]
    [InlineData(ConstantStyle.FloatMinusActivation)]
    [InlineData(ConstantStyle.FloatScalar)]
    [InlineData(ConstantStyle.ScalarMinusActivation)]
    public void A_constant_operand_broadcasts_and_agrees_with_onnx_runtime(ConstantStyle style)
    {
        using var dir = new TempDir();
        var path = PositionalModels.Build(5, 3, 4, 8, style).Save(dir.File("m.onnx"));
        var x = PositionalModels.Input(6, 3, 4, 8);
        var c = Flow.Compile(path, Small);
        var k = Assert.Single(c.Graph.Ops.OfType<QConstant>());
        Assert.Equal([3, 4, 8], k.Output.Type.Shape);
        // Broadcast over the batch: each batch's codes are the same.
        Assert.Equal(k.Codes.Take(32), k.Codes.Skip(64).Take(32));
        if (style == ConstantStyle.Quantized) Assert.Equal(0.005, k.Output.Type.Quant!.Scale, 1e-7);
        Agreement.WithinOneQuantum(path, c, x, 1.6 / 255, minDistinct: 10);
    }

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void A_constant_operand_is_bit_exact_in_rtl(string simulator)
    {
        using var dir = new TempDir();
        var path = PositionalModels.Build(5, 3, 4, 8, ConstantStyle.Float).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, Small);
        // The constant lies in the other bank than the activation: one line per cycle.
        Assert.Contains(c.Design.Program, i => i is EAdd { Serial: false });
        Flow.WriteDesignDirectory(c, dir.File("out"), [PositionalModels.Input(6, 3, 4, 8)], path);
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    [Fact]
    public void Yosys_synthesizes_the_engine()
    {
        using var dir = new TempDir();
        var path = ResidualModels.Build(11, 5, 8, 1).Save(dir.File("m.onnx"));
        var c = Flow.Compile(path, Small, batch: 5);
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(12, 5, 8)], path);
        RtlCheck.YosysSynthesizes(dir.File("out"), "hwgen_eltwise_engine");
    }

    [Fact]
    public void A_constant_that_does_not_broadcast_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 4, 8);
        var t = DType.UInt8;
        var left = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.01, 128, t, "in"), 0.01, 128, t, "l");
        var sum = b.Node("Add", [left, b.Init("pos", DType.Float32, [2, 8], new double[16])], "pos_add");
        var o = QdqModels.Dq(b, QdqModels.Q(b, sum, 0.02, 128, t, "y"), 0.02, 128, t, "out");
        b.Output(o, DType.Float32, 4, 8);
        var path = b.Save(dir.File("m.onnx"));
        CleanFailure.Assert(dir, ["compile", path], "m.onnx", "node 'pos_add'", "[2x8]", "must broadcast to the activation's shape");
    }

    /// <summary>Add of two quantized graph inputs, x [4, 8] at scale 0.5 and z [zRows, 8] at scale 0.5, to scale <paramref name="outScale"/>.</summary>
    static string TwoInputAdd(TempDir dir, int zRows, double outScale, string name)
    {
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 4, 8);
        b.Input("z", DType.Float32, zRows, 8);
        var t = DType.UInt8;
        var l = QdqModels.Dq(b, QdqModels.Q(b, "x", 0.5, 128, t, "a"), 0.5, 128, t, "a");
        var r = QdqModels.Dq(b, QdqModels.Q(b, "z", 0.5, 128, t, "b"), 0.5, 128, t, "b");
        var sum = b.Node("Add", [l, r], name);
        var o = QdqModels.Dq(b, QdqModels.Q(b, sum, outScale, 128, t, "y"), outScale, 128, t, "out");
        b.Output(o, DType.Float32, 4, 8);
        return b.Save(dir.File("m.onnx"));
    }

    [Fact]
    public void Operands_of_different_shapes_are_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        CleanFailure.Assert(dir, ["compile", TwoInputAdd(dir, 1, 1, "bad_add")], "m.onnx", "node 'bad_add'", "[4x8] and [1x8]", "no broadcasting");
    }

    /// <summary>Input scales 50,000 times the output's: no shift of at least 1 represents the multiplier in 15 bits.</summary>
    [Fact]
    public void A_scale_ratio_the_unit_cannot_take_is_one_error_naming_the_node()
    {
        using var dir = new TempDir();
        CleanFailure.Assert(dir, ["compile", TwoInputAdd(dir, 4, 1e-5, "huge_add")], "m.onnx", "node 'huge_add'", "out of range");
    }
}
