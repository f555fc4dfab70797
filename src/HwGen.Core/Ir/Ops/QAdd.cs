namespace HwGen.Core.Ir;

/// <summary>
/// Element-wise sum (or difference) of two int8 tensors of the same shape, each with its own per-tensor quantization,
/// requantized to <see cref="OutputQuant"/> (a residual Add or a Sub between Q/DQ pairs; ReLU or Clip after it folds into
/// the clamp). Per element y = clamp(Zy + (((a - Za)·Ma + (b - Zb)·Mb + 2^(S-1)) >> S), ClampMin, ClampMax): integer
/// multipliers of magnitude below 2^15 with one shift S, an arithmetic shift, so round half toward +infinity, as every
/// requantizer of HwGen (HwGen.Reference.QuantMath.AddRequantize). <see cref="RealMultipliers"/> are sa/sy and ±sb/sy
/// (negative for a Sub), the reals Ma·2^-S and Mb·2^-S approximate (LegalizeRequant sets them).
/// </summary>
public sealed record QAdd(string Name, Value A, Value B, Value Output) : Op(Name, [A, B], Output)
{
    /// <summary>The multipliers' bound: |Ma| and |Mb| are below 2^MultiplierBits (the larger at least half of it).</summary>
    public const int MultiplierBits = 15;
    /// <summary>The largest shift: the hardware's sum and rounding constant stay inside 48 bits.</summary>
    public const int MaxShift = 46;

    public required QuantParams OutputQuant { get; init; }
    public required IReadOnlyList<double> RealMultipliers { get; init; }
    public IReadOnlyList<int>? Multipliers { get; init; }
    public int? Shift { get; init; }
    public required int ClampMin { get; init; }
    public required int ClampMax { get; init; }

    public bool RequantLegalized => Multipliers is not null && Shift is not null;
    public int ZeroPointA => (int)Inputs[0].Type.Quant!.ZeroPoint;
    public int ZeroPointB => (int)Inputs[1].Type.Quant!.ZeroPoint;
    public int OutputZeroPoint => (int)OutputQuant.ZeroPoint;

    public override string Mnemonic => "hw.qadd";
    public override TensorType InferType() => new(DType.Int8, Inputs[0].Type.Shape, OutputQuant);

    public override IEnumerable<(string, Text.Attr)> Attributes()
    {
        yield return ("clamp", Text.Attr.Of([ClampMin, ClampMax]));
        yield return ("real_multipliers", Text.Attr.Of(RealMultipliers));
        if (RequantLegalized)
        {
            yield return ("multipliers", Text.Attr.Of(Multipliers!));
            yield return ("shift", Text.Attr.Of(Shift!.Value));
        }
        if (Engine is not null) yield return ("engine", Text.Attr.Of(Engine));
    }

    /// <summary>Builds a QAdd from its textual form; the output quantization is the result type's.</summary>
    public static QAdd FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a) => operands is [var x, var y]
        ? new(name, x, y, output)
        {
            OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qadd needs a quantized result type"),
            ClampMin = a.Clamp().Min, ClampMax = a.Clamp().Max, RealMultipliers = a.Doubles("real_multipliers"),
            Multipliers = a.Has("multipliers") ? a.Ints("multipliers") : null, Shift = a.Has("shift") ? a.Int("shift") : null,
            Engine = a.Has("engine") ? a.String("engine") : null,
        }
        : throw new HwGenException($"hw.qadd takes two operands, got {operands.Count}");

    public override string? Check()
    {
        for (int i = 0; i < 2; i++)
        {
            var t = Inputs[i].Type;
            string which = i == 0 ? "first" : "second";
            if (RequantSyntax.Int8PerTensor(t, which) is { } why) return why;
        }
        if (!Inputs[0].Type.Shape.SequenceEqual(Inputs[1].Type.Shape))
            return $"operand shapes {ShapeUtil.Format(Inputs[0].Type.Shape)} and {ShapeUtil.Format(Inputs[1].Type.Shape)} differ (no broadcasting)";
        if (OutputQuant.PerChannel) return "output needs per-tensor quantization";
        if (ClampMin > ClampMax || ClampMin < -128 || ClampMax > 127) return $"clamp [{ClampMin},{ClampMax}] is not inside int8";
        if (RealMultipliers.Count != 2 || !(RealMultipliers[0] > 0) || RealMultipliers[1] == 0 || RealMultipliers.Any(r => !double.IsFinite(r)))
            return "real multipliers must be two finite numbers, the first positive and the second not 0";
        if ((Multipliers is null) != (Shift is null)) return "multipliers and shift come together";
        if (RequantLegalized && (Multipliers!.Count != 2 || Multipliers.Any(m => Math.Abs(m) >= 1 << MultiplierBits) || Shift is < 1 or > MaxShift))
            return $"multipliers must be two integers of magnitude below 2^{MultiplierBits} and the shift in [1, {MaxShift}]";
        return null;
    }
}
