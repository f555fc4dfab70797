namespace HwGen.Core.Ir.Text;

/// <summary>Builds an op from its textual form: mnemonic, name (loc), operands, result and attributes.</summary>
public static class OpSyntax
{
    public delegate Op Factory(string name, IReadOnlyList<Value> operands, Value result, AttrMap attrs);

    static Value One(IReadOnlyList<Value> operands, string mnemonic) =>
        operands.Count == 1 ? operands[0] : throw new HwGenException($"{mnemonic} takes one operand, got {operands.Count}");

    static QuantParams QuantOf(Value result, string mnemonic) =>
        result.Type.Quant ?? throw new HwGenException($"{mnemonic} needs a quantized result type");

    static string? EngineOf(AttrMap a) => a.Has("engine") ? a.String("engine") : null;

    public static readonly IReadOnlyDictionary<string, Factory> Ops = new Dictionary<string, Factory>
    {
        ["hw.quantize"] = (n, o, r, a) => new Quantize(n, One(o, "hw.quantize"), r, r.Type.Elem, QuantOf(r, "hw.quantize"))
        {
            Qonnx = a.Has("qonnx") && a.Ints("qonnx") is [var lo, var hi, var off]
                ? new QonnxRule(lo, hi, RoundingModes.Parse(a.String("rounding")) ?? throw new HwGenException($"unknown rounding '{a.String("rounding")}'"), off)
                : null,
        },
        ["hw.dequantize"] = (n, o, r, _) => new Dequantize(n, One(o, "hw.dequantize"), r),
        ["hw.reshape"] = (n, o, r, a) => new Reshape(n, One(o, "hw.reshape"), r, a.Ints("shape")),
        ["hw.qclamp"] = (n, o, r, a) => new QClamp(n, One(o, "hw.qclamp"), r, a.Int("min"), a.Int("max")),
        ["hw.qgemm"] = (n, o, r, a) => QGemm.FromText(n, One(o, "hw.qgemm"), r, a),
        ["hw.qrequant"] = (n, o, r, a) => QRequant.FromText(n, One(o, "hw.qrequant"), r, a),
        ["hw.qadd"] = QAdd.FromText,
        ["hw.qconstant"] = QConstant.FromText,
        ["hw.qmatmul"] = QMatMul.FromText,
        ["hw.qattention"] = QAttention.FromText,
        ["hw.qlut"] = (n, o, r, a) => new QLut(n, One(o, "hw.qlut"), r, a.String("function")) { OutputQuant = QuantOf(r, "hw.qlut"), Entries = a.Int("entries"), Engine = EngineOf(a) },
        ["hw.qsoftmax"] = (n, o, r, a) => QSoftmax.FromText(n, o, r, a, QuantOf(r, "hw.qsoftmax"), EngineOf(a)),
        ["hw.qlayernorm"] = (n, o, r, a) => new QLayerNorm(n, One(o, "hw.qlayernorm"), r, a.Double("epsilon"), a.Doubles("gamma"), a.Doubles("beta"))
        {
            OutputQuant = QuantOf(r, "hw.qlayernorm"), Entries = a.Int("entries"), Engine = EngineOf(a),
        },
    };
}
