using HwGen.Core.Ir;
using System.Numerics;
using HwGen.Reference.NnLut;
using HwGen.Rtl.Emit;

namespace HwGen.Rtl.Engines.NnLut;

/// <summary>A nonlinear unit to emit: one module (plus its table modules) named <see cref="Name"/>.</summary>
public abstract record NnLutUnit(string Name)
{
    /// <summary>The unit's modules, its own last: each name with how to render its Verilog.</summary>
    protected abstract IReadOnlyList<(string Module, Func<string, string> Render)> Parts { get; }

    /// <summary>Names of the modules this unit needs, its own last (nothing is rendered).</summary>
    public IEnumerable<string> Modules => Parts.Select(p => p.Module);

    /// <summary>Modules (name, Verilog text) this unit needs, its own last.</summary>
    public IReadOnlyList<(string Module, string Text)> Emit(string header) => Parts.Select(p => (p.Module, p.Render(header))).ToList();
}

/// <summary>An element-wise unit: one table, one element per cycle, latency <see cref="NnLutCycles.PwlLatency"/>.</summary>
public sealed record PwlUnit(string Name, PwlTable Table) : NnLutUnit(Name)
{
    protected override IReadOnlyList<(string, Func<string, string>)> Parts => [(Name, h => NnLutEmitter.Pwl(Name, Table, h))];
}

public sealed record SoftmaxRtlUnit(string Name, SoftmaxUnit Unit) : NnLutUnit(Name)
{
    protected override IReadOnlyList<(string, Func<string, string>)> Parts =>
    [
        (Name + "_exp", h => NnLutEmitter.Pwl(Name + "_exp", Unit.Exp, h)),
        (Name + "_recip", h => NnLutEmitter.Pwl(Name + "_recip", Unit.Recip, h)),
        (Name, h => Templates.Render("templates", "hwgen_softmax.v.sbn", NnLutEmitter.PrepareSoftmax(Name, Unit, h))),
    ];
}

public sealed record LayerNormRtlUnit(string Name, LayerNormUnit Unit) : NnLutUnit(Name)
{
    protected override IReadOnlyList<(string, Func<string, string>)> Parts =>
    [
        (Name + "_rsqrt", h => NnLutEmitter.Pwl(Name + "_rsqrt", Unit.Rsqrt, h)),
        (Name, h => Templates.Render("templates", "hwgen_layernorm.v.sbn", NnLutEmitter.PrepareLayerNorm(Name, Unit, h))),
    ];
}

/// <summary>A requantization unit: multiplier and shift, one element per cycle, latency <see cref="NnLutCycles.PwlLatency"/>.</summary>
public sealed record RequantRtlUnit(string Name, QRequant Op) : NnLutUnit(Name)
{
    protected override IReadOnlyList<(string, Func<string, string>)> Parts =>
        [(Name, h => Templates.Render("templates", "hwgen_requant.v.sbn", NnLutEmitter.PrepareRequant(Name, Op, h)))];
}

/// <summary>
/// Prepares the values of the NN-LUT templates (hwgen_pwl, hwgen_softmax, hwgen_layernorm): every width, literal and
/// table row is computed here from the golden model's own tables, so the RTL and the golden model share one table.
/// </summary>
public static class NnLutEmitter
{
    /// <summary>A sized signed Verilog literal in hex (two's complement), e.g. 9'sh1ff for -1.</summary>
    public static string Lit(int width, BigInteger value)
    {
        var mod = BigInteger.One << width;
        var v = ((value % mod) + mod) % mod;
        return $"{width}'sh{v.ToString("x").TrimStart('0').PadLeft(1, '0')}";
    }

    static string ULit(int width, long value) => $"{width}'d{value}";

    public static Dictionary<string, object> PreparePwl(string name, PwlTable t, string header)
    {
        int accW = Math.Max(t.AccBits, Math.Max(t.InBits + 1, t.OutBits));
        int segW = t.SegmentBits;
        return new Dictionary<string, object>
        {
            ["header"] = header,
            ["name"] = name,
            ["description"] = t.Description,
            ["in_min"] = t.InMin, ["in_max"] = t.InMax,
            ["in_min_lit"] = Lit(t.InBits, t.InMin), ["in_max_lit"] = Lit(t.InBits, t.InMax),
            ["in_msb"] = t.InBits - 1,
            ["out_msb"] = t.OutBits - 1,
            ["acc_msb"] = accW - 1,
            ["seg_msb"] = segW - 1,
            ["x_ext"] = accW - t.InBits,
            ["seg_zero"] = ULit(segW, 0),
            ["breakpoints"] = t.Breakpoints.Select((b, i) => new Dictionary<string, object> { ["lit"] = Lit(t.InBits, b), ["seg"] = ULit(segW, i + 1) }).ToList(),
            ["segments"] = Enumerable.Range(0, t.Entries).Select(j => new Dictionary<string, object>
            {
                ["seg"] = ULit(segW, j), ["slope"] = Lit(accW, t.Slopes[j]), ["intercept"] = Lit(accW, t.Intercepts[j]),
            }).ToList(),
            ["acc_zero"] = Lit(accW, 0),
            ["shift"] = t.Shift,
            ["shift_minus_1"] = t.Shift - 1,
            ["round_lit"] = Lit(accW, BigInteger.One << (t.Shift - 1)),
            ["out_min"] = t.OutMin, ["out_max"] = t.OutMax,
            ["out_min_acc"] = Lit(accW, t.OutMin), ["out_max_acc"] = Lit(accW, t.OutMax),
            ["out_min_lit"] = Lit(t.OutBits, t.OutMin), ["out_max_lit"] = Lit(t.OutBits, t.OutMax),
        };
    }

    public static string Pwl(string name, PwlTable t, string header) => Templates.Render("templates", "hwgen_pwl.v.sbn", PreparePwl(name, t, header));

    /// <summary>Values of hwgen_requant: the zero points, multiplier, rounding constant and clamp as sized literals.</summary>
    public static Dictionary<string, object> PrepareRequant(string name, QRequant op, string header)
    {
        if (!op.RequantLegalized) throw new InvalidOperationException($"requantization '{op.Name}' has no integer multiplier yet (LegalizeRequant)");
        int shift = op.Shift!.Value;
        return new Dictionary<string, object>
        {
            ["header"] = header, ["name"] = name, ["op"] = op.Name,
            ["zx"] = op.InputZeroPoint, ["zx_lit"] = Lit(10, op.InputZeroPoint),
            ["multiplier"] = op.Multiplier!.Value, ["m_lit"] = Lit(64, op.Multiplier.Value),
            ["shift"] = shift, ["shift_minus_1"] = shift - 1, ["round_lit"] = Lit(64, BigInteger.One << (shift - 1)),
            ["zy"] = op.OutputZeroPoint, ["zy_lit"] = Lit(64, op.OutputZeroPoint),
            ["lo"] = op.ClampMin, ["hi"] = op.ClampMax,
            ["lo_64"] = Lit(64, op.ClampMin), ["hi_64"] = Lit(64, op.ClampMax), ["lo_8"] = Lit(8, op.ClampMin), ["hi_8"] = Lit(8, op.ClampMax),
        };
    }

    public static Dictionary<string, object> PrepareSoftmax(string name, SoftmaxUnit u, string header)
    {
        if (u.Exp.InBits != 9) throw new InvalidOperationException("the softmax exp table must take 9-bit differences");
        if (u.Recip.InBits != LutTables.NormFracBits + 1) throw new InvalidOperationException("the reciprocal table must take the mantissa fraction");
        int sumBits = u.SumBits;
        int eBits = Bits.Unsigned(sumBits - 1);
        if (eBits > 5) throw new InvalidOperationException($"softmax sums of {sumBits} bits are beyond the unit");
        return new Dictionary<string, object>
        {
            ["header"] = header, ["name"] = name,
            ["sum_bits"] = sumBits, ["e_bits"] = eBits, ["frac_bits"] = LutTables.NormFracBits,
            ["exp_bits"] = Bits.Unsigned(u.Exp.OutMax), ["rcp_bits"] = Bits.Unsigned(u.Recip.OutMax),
            ["top_lit"] = ULit(eBits, sumBits - 1),
            ["shift"] = u.Shift, ["shift_base"] = u.Shift + LutTables.RecipFracBits,
            ["multiplier"] = u.Multiplier,
            ["out_zp"] = u.OutZeroPoint, ["out_zp_lit"] = Lit(64, u.OutZeroPoint),
            ["exp_out_msb"] = u.Exp.OutBits - 1, ["rcp_out_msb"] = u.Recip.OutBits - 1,
        };
    }

    public static Dictionary<string, object> PrepareLayerNorm(string name, LayerNormUnit u, string header)
    {
        if (u.Rsqrt.InBits != LutTables.NormFracBits + 2) throw new InvalidOperationException("the rsqrt table must take parity and mantissa fraction");
        long l = u.Length;
        int s1Bits = Bits.Signed(-128 * l, 127 * l);
        int s2Bits = Bits.Unsigned(16384 * l);
        int vBits = Bits.Signed(-16384 * l * l - 1, 16384 * l * l + u.EpsTerm) + 1;
        int eBits = Bits.Unsigned(vBits - 2);
        int hMax = (vBits - 2) / 2;
        int shMax = LutTables.RecipFracBits - LayerNormUnit.NormFracBits + hMax;
        if (shMax > 63) throw new InvalidOperationException("LayerNorm normalization shift beyond 63");
        int rsBits = Bits.Unsigned(u.Rsqrt.OutMax);
        int cBits = Bits.Signed(-256 * l, 256 * l);
        long tMax = 256 * l * u.Rsqrt.OutMax;
        int tBits = Math.Max(Bits.Signed(-tMax, tMax), shMax + 1) + 1;
        long nMax = tMax >> (LutTables.RecipFracBits - LayerNormUnit.NormFracBits);
        long gMax = u.Gamma.Max(Math.Abs), bMax = u.Beta.Max(Math.Abs);
        long zMax = checked(nMax * Math.Max(1, gMax) + bMax + (1L << (u.OutShift - 1)));
        int zBits = Math.Max(Bits.Signed(-zMax, zMax) + 1, tBits + 1);
        int chBits = Math.Max(1, Bits.Unsigned(l - 1));
        return new Dictionary<string, object>
        {
            ["header"] = header, ["name"] = name, ["length"] = l, ["eps_term"] = u.EpsTerm,
            ["s1_bits"] = s1Bits, ["s2_bits"] = s2Bits, ["v_bits"] = vBits, ["e_bits"] = eBits, ["h_bits"] = eBits - 1,
            ["frac_bits"] = LutTables.NormFracBits, ["rs_bits"] = rsBits, ["c_bits"] = cBits, ["t_bits"] = tBits, ["z_bits"] = zBits,
            ["ch_bits"] = chBits, ["ch_one"] = ULit(chBits, 1),
            ["top_lit"] = ULit(eBits, vBits - 2),
            ["norm_shift_base"] = LutTables.RecipFracBits - LayerNormUnit.NormFracBits,
            ["norm_frac"] = LayerNormUnit.NormFracBits,
            ["length_v"] = Lit(vBits, l), ["eps_v"] = Lit(vBits, u.EpsTerm), ["one_v"] = Lit(vBits, 1),
            ["length_c"] = Lit(cBits, l), ["one_t"] = ULit(tBits, 1),
            ["rs_out_msb"] = u.Rsqrt.OutBits - 1,
            ["channels"] = Enumerable.Range(0, (int)l).Select(c => new Dictionary<string, object>
            {
                ["ch"] = ULit(chBits, c), ["gamma"] = Lit(zBits, u.Gamma[c]), ["beta"] = Lit(zBits, u.Beta[c]),
            }).ToList(),
            ["zero_z"] = Lit(zBits, 0),
            ["out_shift"] = u.OutShift, ["out_shift_minus_1"] = u.OutShift - 1,
            ["out_round_z"] = Lit(zBits, BigInteger.One << (u.OutShift - 1)),
            ["min_z"] = Lit(zBits, -128), ["max_z"] = Lit(zBits, 127),
        };
    }
}
