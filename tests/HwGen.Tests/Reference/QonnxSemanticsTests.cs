using HwGen.Core;
using HwGen.Onnx;
using HwGen.Reference;
using HwGen.Tests.Support;

namespace HwGen.Tests.Reference;

/// <summary>
/// Golden model (a) on QONNX's quantizers, against cases worked out by hand from QONNX's definition (qonnx
/// custom_op/general quant.py): v = x / scale + zeropt; clamp v to [min_int, max_int]; round; y = (v - zeropt) * scale;
/// min_int/max_int from bit width, signed and narrow; BipolarQuant y = scale where x >= 0, else -scale.
/// </summary>
public sealed class QonnxSemanticsTests
{
    const string Qonnx = "qonnx.custom_op.general";

    /// <summary>One Quant node on a 1-D input, evaluated by OnnxEvaluator.</summary>
    static double[] Quant(double[] x, double scale, double zp, int bits, bool signed, bool narrow, string? rounding = null,
        string op = "Quant", string domain = Qonnx)
    {
        var attrs = new List<(string, object)> { ("signed", signed ? 1 : 0), ("narrow", narrow ? 1 : 0) };
        if (rounding is not null) attrs.Add(("rounding_mode", rounding));
        var node = new OnnxNode("q", op, domain, ["x", "s", "z", "b"], ["y"], attrs.ToDictionary(a => a.Item1, a => a.Item2 is int i
            ? new OnnxAttribute(a.Item1, Int: i) : new OnnxAttribute(a.Item1, String: (string)a.Item2)));
        var t = (double v) => new Tensor(DType.Float32, [], [v]);
        return OnnxEvaluator.Evaluate(node, [new Tensor(DType.Float32, [x.Length], x), t(scale), t(zp), t(bits)], "test.onnx")[0].Data;
    }

    [Fact]
    public void Ranges_are_qonnx_min_int_and_max_int()
    {
        Assert.Equal((-128L, 127L), QuantMath.QonnxRange(8, true, false));
        Assert.Equal((-127L, 127L), QuantMath.QonnxRange(8, true, true));
        Assert.Equal((0L, 255L), QuantMath.QonnxRange(8, false, false));
        Assert.Equal((0L, 254L), QuantMath.QonnxRange(8, false, true));
        Assert.Equal((-8L, 7L), QuantMath.QonnxRange(4, true, false));
        Assert.Equal((-1L, 1L), QuantMath.QonnxRange(2, true, true));   // ternary
        Assert.Equal((0L, 6L), QuantMath.QonnxRange(3, false, true));
    }

    /// <summary>Scale 0.5, 4-bit signed: 1.25 and -1.25 are the ties 2.5 and -2.5; 0.8 is 1.6, -0.3 is -0.6.</summary>
    [Theory]
    [InlineData("ROUND", 1.0, -1.0, 1.0, -0.5)]
    [InlineData("HALF_EVEN", 1.0, -1.0, 1.0, -0.5)]
    [InlineData("CEIL", 1.5, -1.0, 1.0, 0.0)]
    [InlineData("FLOOR", 1.0, -1.5, 0.5, -0.5)]
    [InlineData("ROUND_TO_ZERO", 1.0, -1.0, 0.5, 0.0)]
    [InlineData("DOWN", 1.0, -1.0, 0.5, 0.0)]
    [InlineData("UP", 1.5, -1.5, 1.0, -0.5)]
    [InlineData("HALF_UP", 1.5, -1.5, 1.0, -0.5)]
    [InlineData("HALF_DOWN", 1.0, -1.0, 1.0, -0.5)]
    public void Rounding_modes_round_the_scaled_value(string mode, double tiePos, double tieNeg, double pos, double neg)
    {
        var y = Quant([1.25, -1.25, 0.8, -0.3], 0.5, 0, 4, true, false, mode);
        Assert.Equal([tiePos, tieNeg, pos, neg], y);
    }

    [Fact]
    public void Values_beyond_the_range_clamp_to_it()
    {
        // Scale 0.5, 4-bit: 5 -> 10 -> 7 -> 3.5; -5 -> -10 -> -8 (narrow: -7).
        Assert.Equal([3.5, -4.0], Quant([5, -5], 0.5, 0, 4, true, false));
        Assert.Equal([3.5, -3.5], Quant([5, -5], 0.5, 0, 4, true, true));
        // Unsigned 3-bit narrow: [0, 6].
        Assert.Equal([6.0, 0.0, 2.0], Quant([10, -3, 2.2], 1, 0, 3, false, true));
        // 2-bit signed narrow is ternary.
        Assert.Equal([1.0, 0.0, -1.0], Quant([0.6, -0.4, -2], 1, 0, 2, true, true));
    }

    [Fact]
    public void The_zero_point_is_added_before_rounding()
    {
        // Scale 1, zero point 1, unsigned 4-bit: 1.5 -> 2.5 -> round half even 2 -> (2 - 1) * 1 = 1.
        // (QuantizeLinear's order, round(1.5) + 1 = 3, would give 2.)
        Assert.Equal([1.0], Quant([1.5], 1, 1, 4, false, false));
        // -3 -> -2 -> clamp to 0 -> (0 - 1) = -1: the clamp is in the shifted domain.
        Assert.Equal([-1.0], Quant([-3], 1, 1, 4, false, false));
    }

    [Fact]
    public void Defaults_domains_and_op_names()
    {
        // rounding_mode defaults to ROUND; IntQuant and the finn domain mean the same.
        Assert.Equal([1.0], Quant([1.25], 0.5, 0, 4, true, false));
        Assert.Equal([1.0], Quant([1.25], 0.5, 0, 4, true, false, op: "IntQuant"));
        Assert.Equal([1.0], Quant([1.25], 0.5, 0, 4, true, false, domain: "finn.custom_op.general"));
        var e = Assert.Throws<HwGenException>(() => Quant([1], 1, 0, 33, true, false));
        Assert.Contains("bit width 33", e.Message);
        // A 32-bit Quant (Brevitas's Int32Bias) is QONNX's rounding to the grid: 2^20 + 0.5 rounds half to even.
        Assert.Equal([1048576.0], Quant([1048576.5], 1, 0, 32, true, false));
        Assert.Throws<HwGenException>(() => Quant([1], 1, 0, 4, true, false, "SIDEWAYS"));
    }

    [Fact]
    public void Bipolar_quant_is_the_sign_times_the_scale()
    {
        var node = new OnnxNode("b", "BipolarQuant", Qonnx, ["x", "s"], ["y"], new Dictionary<string, OnnxAttribute>());
        var y = OnnxEvaluator.Evaluate(node, [new Tensor(DType.Float32, [4], [0, -0.001, 3, -7]), new Tensor(DType.Float32, [], [0.25])], "t.onnx")[0];
        Assert.Equal([0.25, -0.25, 0.25, -0.25], y.Data);
    }

    [Fact]
    public void Per_channel_scales_broadcast_along_their_axis()
    {
        // W[2,3] with scale [[1],[0.5]]: row 0 rounds at 1, row 1 at 0.5; 4-bit signed.
        var node = new OnnxNode("q", "Quant", Qonnx, ["x", "s", "z", "b"], ["y"], new Dictionary<string, OnnxAttribute>
        {
            ["signed"] = new("signed", Int: 1), ["narrow"] = new("narrow", Int: 0),
        });
        var y = OnnxEvaluator.Evaluate(node, [new Tensor(DType.Float32, [2, 3], [0.7, 1.2, 9, 0.7, 1.2, 9]),
            new Tensor(DType.Float32, [2, 1], [1, 0.5]), new Tensor(DType.Float32, [], [0]), new Tensor(DType.Float32, [], [4])], "t.onnx")[0];
        Assert.Equal([1.0, 1.0, 7.0, 0.5, 1.0, 3.5], y.Data);
    }
}
