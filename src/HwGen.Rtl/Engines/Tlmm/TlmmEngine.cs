using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Tlmm;

/// <summary>Slot <see cref="Slot"/> of the lookup module's tables (group <c>Slot / 16</c>) is <see cref="Expr"/>, the sum of
/// the activations <see cref="Pattern"/> names.</summary>
public sealed record TlmmEntry(int Slot, string Expr, string Pattern);

/// <summary>The values of templates/hwgen_tlmm_lookup.v.sbn beyond the common ones.</summary>
public sealed record TlmmValues(int Group, int Groups, int CodeBits, int UsedBits, bool SignedCodes, int Slots, IReadOnlyList<TlmmEntry> Entries);

/// <summary>
/// The table-lookup ternary engine (TLMM, after TeLLMe and T-MAC): layers whose weights all lie in {-1, 0, 1}, packed off chip
/// in codes of G weights (<see cref="TlmmCodes"/>). Each cycle it builds, from one activation line and with adders only, the
/// table of every group's pattern sums, shares it across all ArrayCols columns, and per column looks up each group's code,
/// negates it when the code says so and adds the groups: no multipliers. Everything else is the dense engine's: the GEMM
/// shell (parameters, accumulators, drain and requantizer; templates/hwgen_dense_engine.v.sbn), the tiling, the lowering
/// (<see cref="DenseLowering"/>), the parameter layout (<see cref="DenseEngine.WriteTiles"/>) and the timing
/// (<see cref="DenseTimer"/>). It comes before the dense engine, so it takes the ternary layers (config <c>tlmmGroup</c>,
/// 0 turns it off) and the layers <c>tlmmLayers</c> forces onto it.
/// </summary>
public sealed class TlmmEngine : IDeviceEngine
{
    public const string Id = "tlmm";
    public string Name => Id;
    public string Module => "hwgen_tlmm_engine";
    /// <summary>Table construction, lookup, conditional negate and the column sums.</summary>
    public const string LookupModule = "hwgen_tlmm_lookup";
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Tlmm.Layout];

    /// <summary>A QGemm placed here (its weights packed in groups of <see cref="QGemm.TableGroup"/>).</summary>
    public bool Implements(Op op) => op is QGemm { TableGroup: > 0 };

    public bool Takes(Op op, HwConfig c) => op is QGemm g && (Forced(g, c) || c.TlmmGroup != 0 && FirstNonTernary(g) is null);

    static bool Forced(QGemm g, HwConfig c) => c.TlmmForced.Contains(g.Name);

    /// <summary>The first weight outside {-1, 0, 1}, in W[k, n] order; null when every weight is ternary.</summary>
    public static (int K, int N, int Value)? FirstNonTernary(QGemm g)
    {
        for (int i = 0; i < g.Weights.Count; i++)
            if (g.Weights[i] is < -1 or > 1) return (i / g.N, i % g.N, g.Weights[i]);
        return null;
    }

    /// <summary>Every name <c>tlmmLayers</c> gives must be a layer of the model (a matrix multiply, the ops TLMM can take).</summary>
    public void Check(Graph graph, HwConfig c) => LayerSubset.CheckGemmNames(graph, "tlmmLayers", c.TlmmForced);

    /// <summary>A layer TLMM left to another engine: its first weight outside {-1, 0, 1}, or TLMM turned off.</summary>
    public string? Declined(Op op, HwConfig c) => op is not QGemm g || Takes(g, c) ? null
        : c.TlmmGroup == 0 ? "TLMM off (tlmmGroup 0)"
        : FirstNonTernary(g) is var (k, n, v) ? $"not ternary for TLMM: W[{k}, {n}] = {v}" : null;

    public Op Place(Op op, HwConfig c)
    {
        var g = (QGemm)op;
        if (FirstNonTernary(g) is var (k, n, v))
            throw new HwGenException($"layer '{g.Name}': forced onto the TLMM engine (tlmmLayers), but its weights are not ternary: " +
                $"W[{k}, {n}] = {v}, and TLMM takes only -1, 0 and 1");
        if (!TlmmCodes.Supported(c.TlmmGroup))
            throw new HwGenException($"layer '{g.Name}': the TLMM engine packs ternary weights in groups of 2 or 3, not tlmmGroup = {c.TlmmGroup} " +
                "(0 turns TLMM off)");
        if (TableProblem(c.TlmmGroup) is { } problem)
            throw new HwGenException($"layer '{g.Name}': {problem}");
        return g with { Engine = Name, TableGroup = c.TlmmGroup };
    }

    /// <summary>
    /// Why the lookup module cannot hold the tables of groups of <paramref name="g"/>, or null. A line of ArrayRows activations
    /// makes ⌈ArrayRows / G⌉ tables, one per group, each in <see cref="SlotsPerGroup"/> slots (a code's 4 entry bits address
    /// them): a table of more than <see cref="TlmmCodes.Entries"/>(G) entries does not fit. The table count grows with ArrayRows
    /// only and has no bound of its own; both supported G fit (9 and 14 entries), so this guards the tables against a G added to
    /// <see cref="TlmmCodes.Supported"/> (4 would need 41).
    /// </summary>
    public static string? TableProblem(int g) => TlmmCodes.Entries(g) is var entries && entries > SlotsPerGroup
        ? $"tlmmGroup = {g} makes tables of {entries} entries per group, and the lookup holds {SlotsPerGroup} (a 4-bit entry index)"
        : null;

    public Op Tile(Op op, HwConfig c) => DenseEngine.TileGemm(op, c);

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QGemm)op, x[0]);

    /// <summary>
    /// The engine's arithmetic, table by table: the inputs of each line of ArrayRows (the op's tiling; one line of K before
    /// tiling) in groups of G; per activation row and group, the table of its pattern sums from the activations minus the
    /// zero point (adders only); per column, the group's code looked up, negated when its sign says so, and added to an
    /// accumulator that starts from the bias; then the dense engine's requantization.
    /// </summary>
    public static Tensor Kernel(QGemm g, Tensor x)
    {
        int G = g.TableGroup, m = (int)(x.Size / g.K), span = g.Tiling?.Rows ?? g.K;
        var groups = new List<(int K0, int Count)>();
        for (int s = 0; s < g.K; s += span)
            for (int k0 = s, end = Math.Min(s + span, g.K); k0 < end; k0 += G) groups.Add((k0, Math.Min(G, end - k0)));
        var code = new byte[groups.Count, g.N];   // codes have at most 5 bits
        var w = new int[G];
        for (int q = 0; q < groups.Count; q++)
            for (int n = 0; n < g.N; n++)
            {
                for (int j = 0; j < G; j++) w[j] = j < groups[q].Count ? g.Weights[(groups[q].K0 + j) * g.N + n] : 0;
                code[q, n] = (byte)TlmmCodes.Encode(G, w);
            }
        var patterns = Enumerable.Range(0, TlmmCodes.Entries(G)).Select(e => TlmmCodes.Pattern(G, e)).ToArray();
        var y = new double[m * g.N];
        var acc = new long[g.N];
        var table = new long[patterns.Length];
        for (int r = 0; r < m; r++)
        {
            for (int n = 0; n < g.N; n++) acc[n] = g.Bias[n];
            for (int q = 0; q < groups.Count; q++)
            {
                var (k0, count) = groups[q];
                for (int e = 0; e < patterns.Length; e++)
                {
                    long t = 0;
                    for (int j = 0; j < count; j++)
                    {
                        long d = (long)x.Data[r * g.K + k0 + j] - g.InputZeroPoint;
                        t = patterns[e][j] switch { 1 => t + d, -1 => t - d, _ => t };
                    }
                    table[e] = t;
                }
                for (int n = 0; n < g.N; n++)
                {
                    var (e, negate) = TlmmCodes.Lookup(G, code[q, n]);
                    acc[n] = negate ? acc[n] - table[e] : acc[n] + table[e];
                }
            }
            for (int n = 0; n < g.N; n++) y[r * g.N + n] = DenseEngine.Requantize(g, acc[n], n);
        }
        return new Tensor(DType.Int8, [.. x.Shape[..^1], g.N], y);
    }

    /// <summary>The dense engine's constant layout with packed weight lines.</summary>
    public static DenseLayout Layout(QGemm g, HwConfig c) => new(g, c, cols => TlmmCodes.LineBytes(cols, c.ArrayRows, g.TableGroup));

    public void Lower(Op op, TileBuilder b) => DenseLowering.Lower((QGemm)op, b, Layout((QGemm)op, b.Config), gemm => new Tlmm(gemm));

    public IUnitTimer Timer(HwConfig c) => new DenseTimer(c);

    public long ConstantWords(Op op, HwConfig c) => Layout((QGemm)op, c).Words;

    /// <summary>The dense engine's tiles and parameter blocks, each weight line packed (<see cref="TlmmCodes.WriteLine"/>).</summary>
    public void WriteConstants(Op op, byte[] image, long first, HwConfig c)
    {
        var g = (QGemm)op;
        DenseEngine.WriteTiles(g, image, first, c, Layout(g, c), DenseEngine.PerLine(c, (line, k0, count, col0, cols) =>
            TlmmCodes.WriteLine(line, g.Weights, g.N, g.TableGroup, c.ArrayRows, k0, count, col0, cols)));
    }

    public IEnumerable<string> ModuleNames(Design d) => [Module, LookupModule];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, DenseEngine.RenderShell(d, common, Tlmm.Layout, Module, LookupModule));
        yield return (LookupModule, Templates.Render("templates", LookupModule + ".v.sbn", common, LookupValues(d.Config)));
    }

    /// <summary>Slots per group in the RTL's tables: a code's entry bits (4) address 16, the ones past the table are zero.</summary>
    public const int SlotsPerGroup = 16;

    /// <summary>The lookup module's tables: per group of the line, each entry's sum of the group's activations (d[i] = act[i] - zx);
    /// lanes past ArrayRows (a last group of fewer inputs) are left out.</summary>
    public static TlmmValues LookupValues(HwConfig c)
    {
        int G = c.TlmmGroup, rows = c.ArrayRows, groups = TlmmCodes.GroupsPerLine(rows, G);
        var entries = new List<TlmmEntry>();
        for (int q = 0; q < groups; q++)
            for (int e = 0; e < SlotsPerGroup; e++)
            {
                var terms = new List<string>();
                var p = e < TlmmCodes.Entries(G) ? TlmmCodes.Pattern(G, e) : new int[G];
                for (int j = 0; j < G && q * G + j < rows; j++)
                    if (p[j] != 0) terms.Add((p[j] > 0 ? (terms.Count == 0 ? "" : "+ ") : (terms.Count == 0 ? "-" : "- ")) + $"d[{q * G + j}]");
                string expr = terms.Count == 0 ? "12'sd0" : string.Join(" ", terms);
                string pattern = e < TlmmCodes.Entries(G) ? $"w = ({string.Join(", ", p)})" : "unused";
                entries.Add(new TlmmEntry(q * SlotsPerGroup + e, expr, pattern));
            }
        return new TlmmValues(G, groups, TlmmCodes.CodeBits(G), c.ArrayCols * groups * TlmmCodes.CodeBits(G), G == 3, SlotsPerGroup, entries);
    }

    public ReportTable Report(Design d)
    {
        var layers = d.Graph.Ops.OfType<QGemm>().Where(g => g.Engine == Name).ToList();
        var c = d.Config;
        return new ReportTable($"Ternary layers on the table-lookup engine (TLMM, G = {c.TlmmGroup}, {c.ArrayRows}x{c.ArrayCols}: tables shared by {c.ArrayCols} columns)",
            layers.Count == 0 ? "" : $"{layers.Count} ternary layers on TLMM",
            ["layer", "engine", "why", "input", "output", "packed weights", "tiles (row blocks x col tiles)", "est. cycles", "off-chip bytes"],
            layers.Select(g =>
            {
                var cost = d.CostOf(g);
                int groups = TlmmCodes.GroupsPerLine(c.ArrayRows, g.TableGroup);
                string why = Forced(g, c) ? "forced (tlmmLayers), weights in {-1, 0, 1}" : "weights in {-1, 0, 1}";
                return (IReadOnlyList<string>)[g.Name, Name, why, ShapeUtil.Format(g.Input.Type.Shape), ShapeUtil.Format(g.Output.Type.Shape),
                    $"{groups * TlmmCodes.CodeBits(g.TableGroup)} bits per {c.ArrayRows} weights", $"{g.Tiling!.RowBlocks}x{g.Tiling.ColTiles}",
                    $"{cost.Cycles}", $"{cost.OffChipBytes}"];
            }).ToList(), NumericColumns: 2);
    }
}
