namespace HwGen.Core.Ir;

/// <summary>
/// A nonlinear op on int8 codes computed by an NN-LUT unit: an element-wise table (<see cref="QLut"/>), softmax
/// (<see cref="QSoftmax"/>) or layer normalization (<see cref="QLayerNorm"/>) over the last axis. The input has
/// per-tensor quantization; the output is int8 with <see cref="OutputQuant"/>. The unit's tables follow from the
/// attributes and the two quantizations (HwGen.Reference.NnLut).
/// </summary>
public abstract record QNonlinear(string Name, Value Input, Value Output) : Op(Name, [Input], Output)
{
    public static readonly int[] SupportedEntries = [8, 16, 32];

    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];
    public required QuantParams OutputQuant { get; init; }
    /// <summary>Table entries (8, 16 or 32), set from the configuration by SelectEngines.</summary>
    public int Entries { get; init; } = 16;

    public override TensorType InferType() => new(DType.Int8, Inputs[0].Type.Shape, OutputQuant);

    protected IEnumerable<(string, Text.Attr)> Common()
    {
        yield return ("entries", Text.Attr.Of(Entries));
        if (Engine is not null) yield return ("engine", Text.Attr.Of(Engine));
    }

    public override string? Check()
    {
        var t = Inputs[0].Type;
        if (t.Elem != DType.Int8) return $"input must be i8, got {t.Elem.Name()}";
        if (t.Quant is null || t.Quant.PerChannel) return "input needs per-tensor quantization";
        if (OutputQuant.PerChannel) return "output needs per-tensor quantization";
        if (!SupportedEntries.Contains(Entries)) return $"a table of {Entries} entries is not supported (8, 16 or 32)";
        if (t.Shape.Count == 0) return "input must have at least one dimension";
        return null;
    }
}

/// <summary>An element-wise function of the real value: y = f(x), one table lookup per element.</summary>
public sealed record QLut(string Name, Value Input, Value Output, string Function) : QNonlinear(Name, Input, Output)
{
    /// <summary>Functions an element-wise unit computes (names as in HwGen.Reference.NnLut.Functions).</summary>
    public static readonly string[] Functions = ["gelu", "erf", "sigmoid", "tanh", "silu"];

    public override string Mnemonic => "hw.qlut";
    public override IEnumerable<(string, Text.Attr)> Attributes() => Common().Prepend(("function", Text.Attr.Of(Function)));
    public override string? Check() => base.Check() ?? (Functions.Contains(Function) ? null : $"unknown function '{Function}'");
}

/// <summary>Softmax over the last axis.</summary>
public sealed record QSoftmax(string Name, Value Input, Value Output) : QNonlinear(Name, Input, Output)
{
    public override string Mnemonic => "hw.qsoftmax";
    public override IEnumerable<(string, Text.Attr)> Attributes() => Common();
}

/// <summary>Layer normalization over the last axis: (x - mean) / sqrt(var + Epsilon) * Gamma + Beta.</summary>
public sealed record QLayerNorm(string Name, Value Input, Value Output, double Epsilon, IReadOnlyList<double> Gamma, IReadOnlyList<double> Beta)
    : QNonlinear(Name, Input, Output)
{
    public override string Mnemonic => "hw.qlayernorm";
    public override IEnumerable<(string, Text.Attr)> Attributes() =>
        Common().Concat([("epsilon", Text.Attr.Of(Epsilon)), ("gamma", Text.Attr.Of(Gamma)), ("beta", Text.Attr.Of(Beta))]);

    public override string? Check()
    {
        if (base.Check() is { } e) return e;
        int n = Inputs[0].Type.Shape[^1];
        if (Gamma.Count != n || Beta.Count != n) return $"gamma and beta need {n} entries (the last axis), got {Gamma.Count} and {Beta.Count}";
        return Epsilon >= 0 && double.IsFinite(Epsilon) ? null : $"epsilon {Epsilon} must be finite and not negative";
    }
}
