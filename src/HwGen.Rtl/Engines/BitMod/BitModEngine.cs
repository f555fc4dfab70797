using System.Globalization;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.BitMod;

/// <summary>One row of the PE's decoder table: index {wide, datatype id, code} gives two terms, each {nonzero, negative, shift}.</summary>
public sealed record BitModDecode(int Index, string Bits, string Comment);

/// <summary>The values of templates/hwgen_bitmod_pe.v.sbn and of the shell's serial mode beyond the common ones.</summary>
/// <summary>SumBits: the PE's column sums, signed: a term is at most 255 · 16 = 4080 in magnitude (below 2^12), a column adds ArrayRows.</summary>
public sealed record BitModValues(int ScaleBits, int HeaderBits, int GposBit, int SumBits, IReadOnlyList<BitModDecode> Decoder);

/// <summary>
/// The bit-serial mixture-of-datatype engine (BitMoD, HPCA 2025) for 3- and 4-bit weights: the compiler quantizes each group of G
/// weights along the input dimension to the datatype that fits it best (<see cref="BitModQuantizer"/>), with an integer scale per
/// group under a real scale per output channel, and packs them off chip (<see cref="BitModCodes"/>). Each cycle the engine takes one
/// activation line and one code line, like the dense engine, but a decoder turns each code (with its group's datatype) into at
/// most two signed powers of two and the PE adds one term a cycle, shifted, per input: two cycles a weight line and row, ⌈bits / 2⌉.
/// Per group and row the partial sums go to a bit-serial dequantizer that multiplies them by the group scale one bit a cycle and
/// adds them to the accumulators. Everything else is the dense engine's GEMM shell (parameters, accumulators, drain, requantizer;
/// templates/hwgen_dense_engine.v.sbn in its serial mode), tiling and lowering. It takes the layers the config's
/// <c>bitmodLayers</c> names, and comes before the other matrix engines.
/// </summary>
public sealed class BitModEngine : IDeviceEngine
{
    public const string Id = "bitmod";
    public string Name => Id;
    public string Module => "hwgen_bitmod_engine";
    /// <summary>Decoder and bit-serial shift-add of the column sums.</summary>
    public const string PeModule = "hwgen_bitmod_pe";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [BitMod.Layout];

    public bool Implements(Op op) => op is QGemm { Groups: not null };

    public bool Takes(Op op, HwConfig c) => op is QGemm g && Entry(g.Name, c) is not null;

    /// <summary>The <c>bitmodLayers</c> entries: a layer name or <c>*</c>, and the spec text after '=' ("" for none).</summary>
    static List<(string Name, string Spec)> Entries(HwConfig c) => c.BitmodLayers.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(e => e.Split('=', 2)).Select(p => (Name: p[0].Trim(), Spec: p.Length > 1 ? p[1].Trim() : "")).ToList();

    /// <summary>The <c>bitmodLayers</c> entry of layer <paramref name="name"/>: its own, else <c>*</c>'s; its spec text after '=' ("" for none).</summary>
    static string? Entry(string name, HwConfig c)
    {
        var entries = Entries(c);
        return entries.FirstOrDefault(e => e.Name == name).Spec ?? entries.FirstOrDefault(e => e.Name == "*").Spec;
    }

    /// <summary>Every name <c>bitmodLayers</c> gives (other than <c>*</c>) must be a layer of the model.</summary>
    public void Check(Graph graph, HwConfig c) =>
        LayerSubset.CheckGemmNames(graph, "bitmodLayers", Entries(c).Select(e => e.Name).Where(n => n != "*"));

    /// <summary>The quantization of layer <paramref name="g"/>: the config's defaults, overridden by its entry's
    /// <c>FORMAT[BITS][/GROUP]</c>; errors name the layer.</summary>
    public static ModSpec Spec(QGemm g, HwConfig c)
    {
        string text = Entry(g.Name, c) ?? "", format = c.BitmodFormat.Trim();
        int bits = c.BitmodBits, group = c.BitmodGroup;
        string Err(string why) => $"layer '{g.Name}': {why}";
        if (text.Length > 0)
        {
            var parts = text.Split('/');
            string head = parts[0];
            int digits = head.Length - head.Reverse().TakeWhile(char.IsAsciiDigit).Count();
            if (head.Length > 0) format = head[..digits];
            if (parts.Length > 2 || parts.Length == 2 && !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out group)
                || digits < head.Length && !int.TryParse(head[digits..], NumberStyles.None, CultureInfo.InvariantCulture, out bits))
                throw new HwGenException(Err($"bitmodLayers entry '{text}' is not FORMAT[BITS][/GROUP] (e.g. mod4/128)"));
        }
        if (format is not ("mod" or "int"))
            throw new HwGenException(Err($"unknown BitMoD datatype format '{format}' (known: mod, int)"));
        if (bits is not (3 or 4))
            throw new HwGenException(Err($"BitMoD {format} weights have 3 or 4 bits, not {bits}"));
        int rows = c.ArrayRows;
        if (group < rows || group % rows != 0 || group / rows > 255)
            throw new HwGenException(Err($"BitMoD group size {group} does not fit the config: it must be a multiple of arrayRows = {rows}, " +
                $"at most {255 * rows} (255 weight lines)"));
        if (ModType.IdBits + c.BitmodScaleBits > 8 * rows)
            throw new HwGenException(Err($"BitMoD group scales of {c.BitmodScaleBits} bits do not fit a header line of {rows} inputs (at most {8 * rows - 3})"));
        return new ModSpec(format == "mod", bits, group, c.BitmodScaleBits);
    }

    /// <summary>
    /// Quantizes the layer's weights (<see cref="BitModQuantizer"/>) from their real values, W[k, n] · RealMultiplier[n] (the real
    /// weights up to the layer's sx/sy): the channel scale becomes the real multiplier, the bias is rounded to it. INT weights that
    /// already fit (QONNX 3- and 4-bit) keep their codes, multipliers and bias.
    /// </summary>
    public Op Place(Op op, HwConfig c)
    {
        var g = (QGemm)op;
        var spec = Spec(g, c);
        if (g.QonnxBits > 4)
            throw new HwGenException($"layer '{g.Name}': its QONNX weights have {g.QonnxBits} bits; the BitMoD engine takes QONNX weights of at most 4 bits (bitmodLayers)");
        var q = BitModQuantizer.Exact(g.Weights, g.K, g.N, spec);
        var bias = g.Bias.ToArray();
        var real = g.RealMultiplier.ToArray();
        var (mult, shift) = (g.Multiplier.ToArray(), g.Shift.ToArray());
        if (q is null)
        {
            var w = new double[g.K * g.N];
            for (int i = 0; i < w.Length; i++) w[i] = g.Weights[i] * g.RealMultiplier[i % g.N];
            q = BitModQuantizer.Quantize(w, g.K, g.N, spec);
            for (int n = 0; n < g.N; n++)
            {
                if (q.ChannelScale[n] == 0) continue;
                double b = Math.Round(g.Bias[n] * g.RealMultiplier[n] / q.ChannelScale[n], MidpointRounding.ToEven);
                if (b is < int.MinValue or > int.MaxValue)
                    throw new HwGenException($"layer '{g.Name}': the bias of channel {n} does not fit int32 at its BitMoD scale {q.ChannelScale[n]}");
                bias[n] = (int)b;
                real[n] = q.ChannelScale[n];
                (mult[n], shift[n]) = QuantMath.FixedPoint(real[n]);
            }
        }
        var groups = new WeightGroups(spec.Bits, spec.Group, spec.ScaleBits, q.Types, q.Scales, q.RelativeMse, q.RelativeMax);
        var placed = g with { Engine = Name, Weights = q.Values, Bias = bias, RealMultiplier = real, Multiplier = mult, Shift = shift, Groups = groups };
        for (int n = 0; n < g.N; n++)
        {
            long bound = Math.Abs((long)bias[n]);
            for (int k = 0; k < g.K; k++) bound += 255L * Math.Abs(q.Values[k * g.N + n]) * q.Scales[k / spec.Group * g.N + n];
            if (bound > int.MaxValue)
                throw new HwGenException($"layer '{g.Name}': the int32 accumulator of channel {n} can overflow with BitMoD weights (|acc| up to {bound})");
        }
        return placed;
    }

    public Op Tile(Op op, HwConfig c) => DenseEngine.TileGemm(op, c);

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QGemm)op, x[0]);

    /// <summary>The engine's arithmetic: per row and column, per group, the sum over its inputs of (x - zx) times the weight's value
    /// in its datatype, times the group's integer scale, added to an accumulator that starts from the bias; then the dense engine's
    /// requantization.</summary>
    public static Tensor Kernel(QGemm g, Tensor x)
    {
        var gr = g.Groups!;
        int m = (int)(x.Size / g.K);
        var y = new double[m * g.N];
        for (int r = 0; r < m; r++)
            for (int n = 0; n < g.N; n++)
            {
                long acc = g.Bias[n];
                for (int k0 = 0; k0 < g.K; k0 += gr.Size)
                {
                    long psum = 0;
                    for (int k = k0; k < Math.Min(g.K, k0 + gr.Size); k++) psum += ((long)x.Data[r * g.K + k] - g.InputZeroPoint) * g.Weights[k * g.N + n];
                    acc += psum * gr.Scales[k0 / gr.Size * g.N + n];
                }
                y[r * g.N + n] = DenseEngine.Requantize(g, acc, n);
            }
        return new Tensor(DType.Int8, [.. x.Shape[..^1], g.N], y);
    }

    /// <summary>The dense engine's constant layout with BitMoD lines: code lines and a header line per group.</summary>
    public static DenseLayout Layout(QGemm g, HwConfig c) => new(g, c, cols => BitModCodes.LineBytes(cols, c.ArrayRows, g.Groups!),
        (k0, k) => BitModCodes.Lines(k0, k, c.ArrayRows, g.Groups!.Size));

    public void Lower(Op op, TileBuilder b)
    {
        var g = (QGemm)op;
        int groupLines = g.Groups!.Size / b.Config.ArrayRows;
        // Two issues a code line and row, and about a header line per group (the scheduler's estimate; the cycle model is exact).
        DenseLowering.Lower(g, b, Layout(g, b.Config), gemm => new BitMod(gemm, g.Groups!, b.Config.ArrayRows),
            (lines, rows) => 2L * lines * rows + (lines + groupLines - 1) / groupLines);
    }

    public IUnitTimer Timer(HwConfig c) => new BitModTimer(c);

    public long ConstantWords(Op op, HwConfig c) => Layout((QGemm)op, c).Words;

    public void WriteConstants(Op op, byte[] image, long first, HwConfig c)
    {
        var g = (QGemm)op;
        DenseEngine.WriteTiles(g, image, first, c, Layout(g, c), (slot, k0, kEnd, col0, cols) => BitModCodes.WriteChunk(g, c, slot, k0, kEnd, col0, cols));
    }

    public IEnumerable<string> ModuleNames(Design d) => [Module, PeModule];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        var values = Values(d.Config);
        yield return (Module, DenseEngine.RenderShell(d, common, BitMod.Layout, Module, PeModule, values));
        yield return (PeModule, Templates.Render("templates", PeModule + ".v.sbn", common, values));
    }

    /// <summary>The decoder table (every datatype of 3 and 4 bits, every code: its value's terms, <see cref="ModType.Terms"/>) and the
    /// header's widths.</summary>
    public static BitModValues Values(HwConfig c)
    {
        var rows = new List<BitModDecode>();
        foreach (int bits in new[] { 3, 4 })
            foreach (var t in ModType.All(bits))
                for (int code = 0; code < t.Values.Count; code++)
                {
                    var terms = ModType.Terms(t.Values[code]);
                    string Term(int i) => i < terms.Count ? $"1{(terms[i].Sign < 0 ? 1 : 0)}{Convert.ToString(terms[i].Shift, 2).PadLeft(3, '0')}" : "00000";
                    rows.Add(new((bits == 4 ? 128 : 0) | t.Id << 4 | code, Term(1) + Term(0), $"{t.Name} code {code}: {t.Values[code]}"));
                }
        return new BitModValues(c.BitmodScaleBits, ModType.IdBits + c.BitmodScaleBits, BitMod.Layout["gpos"].Offset,
            13 + (int)Math.Ceiling(Math.Log2(c.ArrayRows)), rows);
    }

    public ReportTable Report(Design d)
    {
        var layers = d.Graph.Ops.OfType<QGemm>().Where(g => g.Engine == Name).ToList();
        var c = d.Config;
        return new ReportTable($"Layers on the bit-serial mixture-of-datatype engine (BitMoD, {c.ArrayRows}x{c.ArrayCols}, 2 cycles a weight line and row)",
            layers.Count == 0 ? "" : $"{layers.Count} layers on BitMoD",
            ["layer", "engine", "input", "output", "weights", "datatypes (groups)", "relative MSE", "max error / max |w|", "packed bits per weight", "est. cycles", "off-chip bytes"],
            layers.Select(g =>
            {
                var gr = g.Groups!;
                var cost = d.CostOf(g);
                var hist = gr.Types.GroupBy(t => t).OrderBy(h => h.Key).Select(h => $"{ModType.Of(gr.Bits, h.Key).Name} {h.Count()}");
                double bits = 8.0 * Layout(g, c).WeightBytes / ((long)g.K * g.N);
                return (IReadOnlyList<string>)[g.Name, Name, ShapeUtil.Format(g.Input.Type.Shape), ShapeUtil.Format(g.Output.Type.Shape),
                    $"{(gr.Types.All(t => t == ModType.Int) ? "int" : "mod")}{gr.Bits}, groups of {gr.Size}, {gr.ScaleBits}-bit scales",
                    string.Join(", ", hist), gr.RelativeMse.ToString("0.00000", CultureInfo.InvariantCulture), gr.RelativeMax.ToString("0.0000", CultureInfo.InvariantCulture),
                    bits.ToString("0.00", CultureInfo.InvariantCulture), $"{cost.Cycles}", $"{cost.OffChipBytes}"];
            }).ToList(), NumericColumns: 5);
    }
}
