namespace HwGen.Core.Ir;

/// <summary>Clamp of a quantized tensor whose output keeps the input's quantization: min(max(q, Min), Max).
/// ReLU is QClamp with Min = the zero point; Clip(a, b) has the quantized bounds.</summary>
public sealed record QClamp(string Name, Value Input, Value Output, int Min, int Max) : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public override string Mnemonic => "hw.qclamp";
    public override TensorType InferType() => Inputs[0].Type;
    public override IEnumerable<(string, Text.Attr)> Attributes() => [("min", Text.Attr.Of(Min)), ("max", Text.Attr.Of(Max))];

    public override string? Check()
    {
        if (Inputs[0].Type.Quant is null) return "input has no quantization parameters";
        var (lo, hi) = Inputs[0].Type.Elem.Range();
        return Min > Max || Min < lo || Max > hi ? $"bounds [{Min}, {Max}] are not inside {Inputs[0].Type.Elem.Name()}" : null;
    }
}
