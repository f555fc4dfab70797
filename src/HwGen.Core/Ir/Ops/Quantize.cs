namespace HwGen.Core.Ir;

/// <summary>Host-side boundary op: float input to quantized integers, ONNX QuantizeLinear semantics
/// (round half to even, saturate), or QONNX Quant's when <see cref="Qonnx"/> is set. Runs on the host that feeds the
/// accelerator, not in RTL.</summary>
public sealed record Quantize(string Name, Value Input, Value Output, DType Target, QuantParams Quant)
    : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    /// <summary>QONNX Quant semantics instead of ONNX's (null: QuantizeLinear).</summary>
    public QonnxRule? Qonnx { get; init; }

    public override string Mnemonic => "hw.quantize";
    public override TensorType InferType() => new(Target, Inputs[0].Type.Shape, Quant);

    public override IEnumerable<(string, Text.Attr)> Attributes() => Qonnx is { } r
        ? [("qonnx", Text.Attr.Of([r.Min, r.Max, r.Offset])), ("rounding", Text.Attr.Of(r.Rounding.Name()))]
        : [];

    public override string? Check()
    {
        if (Inputs[0].Type.Elem.IsInteger()) return "input must be float";
        if (Quant.PerChannel) return "per-channel input quantization is not supported";
        if (Qonnx is { } r && (r.Min > r.Max || r.Min - r.Offset < Target.Range().Min || r.Max - r.Offset > Target.Range().Max))
            return $"QONNX range [{r.Min}, {r.Max}] minus offset {r.Offset} is not inside {Target.Name()}";
        return null;
    }
}

/// <summary>
/// QONNX Quant on the host: code = round(clamp(x / scale + zeropt, Min, Max)) - Offset, rounded by <see cref="Rounding"/>
/// (HwGen.Reference.QuantMath.QonnxQuantize). Min, Max and zeropt are QONNX's integers; the stored code is Offset less
/// (128 for unsigned values held as int8, else 0), so the value's zero point is zeropt - Offset.
/// </summary>
public sealed record QonnxRule(int Min, int Max, Rounding Rounding, int Offset);

/// <summary>Host-side boundary op: quantized integers back to float, (q - zp) * scale.</summary>
public sealed record Dequantize(string Name, Value Input, Value Output)
    : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public override string Mnemonic => "hw.dequantize";
    public override TensorType InferType() => new(DType.Float32, Inputs[0].Type.Shape);
    public override string? Check() => Inputs[0].Type.Quant is null ? "input has no quantization parameters" : null;
}
