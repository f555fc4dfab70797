namespace HwGen.Core.Ir;

/// <summary>Host-side boundary op: float input to quantized integers, ONNX QuantizeLinear semantics
/// (round half to even, saturate). Runs on the host that feeds the accelerator, not in RTL.</summary>
public sealed record Quantize(string Name, Value Input, Value Output, DType Target, QuantParams Quant)
    : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public override string Mnemonic => "hw.quantize";
    public override TensorType InferType() => new(Target, Inputs[0].Type.Shape, Quant);
    public override string? Check() =>
        Inputs[0].Type.Elem.IsInteger() ? "input must be float" : Quant.PerChannel ? "per-channel input quantization is not supported" : null;
}

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
