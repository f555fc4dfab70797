namespace HwGen.Core.Ir;

/// <summary>The textual form and checks of a per-tensor requantization (clamp, real multiplier, and once legalized the integer
/// multiplier and shift), as <see cref="QRequant"/> and <see cref="QMatMul"/> carry it.</summary>
public static class RequantSyntax
{
    /// <summary>The attributes, their keys after <paramref name="prefix"/> (an op with two requantizers names each).</summary>
    public static IEnumerable<(string, Text.Attr)> Attributes(int clampMin, int clampMax, double real, int? multiplier, int? shift, string? engine, string prefix = "")
    {
        yield return (prefix + "clamp", Text.Attr.Of([clampMin, clampMax]));
        yield return (prefix + "real_multiplier", Text.Attr.Of(real));
        if (multiplier is { } m && shift is { } s)
        {
            yield return (prefix + "multiplier", Text.Attr.Of(m));
            yield return (prefix + "shift", Text.Attr.Of(s));
        }
        if (engine is not null) yield return ("engine", Text.Attr.Of(engine));
    }

    public static (int ClampMin, int ClampMax, double Real, int? Multiplier, int? Shift, string? Engine) Parse(Text.AttrMap a, string prefix = "") =>
        (a.Clamp(prefix + "clamp").Min, a.Clamp(prefix + "clamp").Max, a.Double(prefix + "real_multiplier"),
         a.Has(prefix + "multiplier") ? a.Int(prefix + "multiplier") : null, a.Has(prefix + "shift") ? a.Int(prefix + "shift") : null,
         a.Has("engine") ? a.String("engine") : null);

    /// <summary>Why an operand of a requantizing op is not int8 with per-tensor quantization, or null.</summary>
    public static string? Int8PerTensor(TensorType t, string which) =>
        t.Elem != DType.Int8 ? $"{which} operand must be i8, got {t.Elem.Name()}"
        : t.Quant is null || t.Quant.PerChannel ? $"{which} operand needs per-tensor quantization" : null;

    /// <summary>Why the requantization is invalid, or null: the clamp inside int8, a positive finite real multiplier, and a
    /// legalized multiplier in [0, <paramref name="multiplierEnd"/>) with a shift in [1, <paramref name="maxShift"/>].</summary>
    public static string? Check(int clampMin, int clampMax, double real, int? multiplier, int? shift, long multiplierEnd, int maxShift)
    {
        if (clampMin > clampMax || clampMin < -128 || clampMax > 127) return $"clamp [{clampMin},{clampMax}] is not inside int8";
        if (!(real > 0) || !double.IsFinite(real)) return $"real multiplier {real} must be positive and finite";
        if ((multiplier is null) != (shift is null)) return "multiplier and shift come together";
        if (multiplier is { } m && shift is { } s && (s < 1 || s > maxShift || m < 0 || m >= multiplierEnd))
            return $"requantization multiplier must be in [0, {multiplierEnd}) and the shift in [1, {maxShift}]";
        return null;
    }
}
