using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Engines.Tlmm;
using HwGen.Rtl.Program;

namespace HwGen.Cli;

/// <summary>
/// TLMM against the dense int8 engine at equal MACs per cycle (the same rows x cols array: rows x cols weights a cycle):
/// yosys resources of each engine (the GEMM shell with its datapath, and the datapath alone) under <c>synth_xilinx</c> and
/// with <c>-nodsp</c>; estimated cycles (= simulated without stalls) per output row of a random ternary MLP at batch 1 and
/// 64; off-chip weight bytes per weight.
/// </summary>
public static class TlmmBench
{
    public sealed record Size(int Rows, int Cols, int Group)
    {
        public HwConfig Config(bool tlmm) => new() { ArrayRows = Rows, ArrayCols = Cols, TlmmGroup = tlmm ? Group : 0, Scheduler = "greedy" };
        public override string ToString() => $"{Rows}x{Cols}, G = {Group}";
    }

    public sealed record Resources(int Lut, int Ff, int Carry, int Dsp, int LutNoDsp, int FfNoDsp, int DspNoDsp);

    public sealed record Speed(int Batch, long TlmmCycles, long DenseCycles, long TlmmBytes, long DenseBytes);

    public sealed record Row(Size Size, IReadOnlyList<(string Module, Resources? R)> Synth, IReadOnlyList<Speed> Speeds, double TlmmBytesPerWeight, double DenseBytesPerWeight);

    public static readonly Size[] Sizes = [new(4, 8, 2), new(6, 12, 3)];

    /// <summary>The MLP whose cycles are measured: <see cref="Layers"/> ternary layers of <see cref="Width"/> features.</summary>
    public const int Width = 512, Layers = 2;

    public static List<Row> Run(bool quick, TextWriter progress)
    {
        var rows = new List<Row>();
        foreach (var size in quick ? Sizes[..1] : Sizes)
        {
            var speeds = new List<Speed>();
            double tPerW = 0, dPerW = 0;
            foreach (int batch in new[] { 1, 64 })
            {
                var t = RooflineBench.RandomMlp(Width, Layers, batch, size.Config(true), ternary: true);
                var d = RooflineBench.RandomMlp(Width, Layers, batch, size.Config(false), ternary: true);
                if (t.Graph.Ops.OfType<QGemm>().Any(g => g.Engine != TlmmEngine.Id)) throw new InvalidOperationException("a ternary layer is not on TLMM");
                speeds.Add(new Speed(batch, t.EstimatedCycles, d.EstimatedCycles, t.OffChipBytesMoved, d.OffChipBytesMoved));
                progress.WriteLine($"  {size} batch {batch}: TLMM {t.EstimatedCycles} cycles, dense {d.EstimatedCycles}");
                long weights = t.Graph.Ops.OfType<QGemm>().Sum(g => (long)g.K * g.N);
                tPerW = t.Graph.Ops.OfType<QGemm>().Sum(g => TlmmEngine.Layout(g, t.Config).WeightBytes) / (double)weights;
                dPerW = d.Graph.Ops.OfType<QGemm>().Sum(g => new DenseLayout(g, d.Config).WeightBytes) / (double)weights;
            }
            var synth = quick ? [] : Synthesize(size, progress);
            rows.Add(new Row(size, synth, speeds, tPerW, dPerW));
        }
        return rows;
    }

    /// <summary>The engines of one size, each as the whole unit (GEMM shell and datapath) and as its datapath alone.</summary>
    static List<(string, Resources?)> Synthesize(Size size, TextWriter progress)
    {
        var dir = Directory.CreateTempSubdirectory("hwgen-tlmm-bench").FullName;
        try
        {
            var design = RooflineBench.RandomMlp(2 * size.Cols, 1, 1, size.Config(true), ternary: true);
            RtlEmitter.Write(design, dir);
            var list = new List<(string, Resources?)>();
            string dense = new DenseEngine().Module, tlmm = new TlmmEngine().Module, macs = DenseEngine.MacsModule, lookup = TlmmEngine.LookupModule;
            foreach (var (module, files) in new[] { (dense, $"{dense}.v {macs}.v"), (tlmm, $"{tlmm}.v {lookup}.v"), (macs, $"{macs}.v"), (lookup, $"{lookup}.v") })
            {
                var with = Yosys(dir, module, files, "");
                var without = Yosys(dir, module, files, " -nodsp");
                list.Add((module, with is null || without is null ? null
                    : new Resources(with.Value.Lut, with.Value.Ff, with.Value.Carry, with.Value.Dsp, without.Value.Lut, without.Value.Ff, without.Value.Dsp)));
                progress.WriteLine($"  {size} {module}: {with?.Lut} LUTs, {with?.Dsp} DSP; -nodsp {without?.Lut} LUTs");
            }
            return list;
        }
        finally { Directory.Delete(dir, true); }
    }

    static (int Lut, int Ff, int Carry, int Dsp)? Yosys(string dir, string module, string files, string options)
    {
        var stat = Path.Combine(dir, "stat.txt");
        var psi = new System.Diagnostics.ProcessStartInfo("yosys", $"-q -p \"read_verilog {files}; synth_xilinx -top {module} -flatten{options}; tee -q -o stat.txt stat\"")
        {
            WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = System.Diagnostics.Process.Start(psi) ?? throw new HwGenException("yosys did not start");
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(stat)) return null;
        int Sum(Func<string, bool> cell) => File.ReadAllLines(stat).Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.Length == 2 && cell(w[0]) && int.TryParse(w[1], out _)).Sum(w => int.Parse(w[1]));
        var r = (Sum(c => c.StartsWith("LUT") && c.Length == 4), Sum(c => c.StartsWith("FD")), Sum(c => c.StartsWith("CARRY")), Sum(c => c.StartsWith("DSP48")));
        File.Delete(stat);
        return r;
    }

    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine($"TLMM against the dense int8 engine at equal MACs per cycle (the same array: rows x cols weights a cycle). Cycles: estimated (= simulated " +
                      $"without stalls) for a random MLP of {Layers} ternary layers of {Width} features (IR built directly, greedy scheduler, 64 KiB scratchpad, " +
                      "8-byte port), compiled once with TLMM (tlmmGroup G) and once without (tlmmGroup 0: the same layers as int8 on the MAC array).").AppendLine();
        sb.AppendLine("| array | batch | TLMM cycles | dense cycles | TLMM / dense | TLMM cycles per output row | dense cycles per output row | TLMM off-chip B | dense off-chip B |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            foreach (var s in r.Speeds)
                sb.AppendLine($"| {r.Size} | {s.Batch} | {s.TlmmCycles} | {s.DenseCycles} | {(s.TlmmCycles / (double)s.DenseCycles).ToString("F2", inv)} | " +
                              $"{(s.TlmmCycles / (double)s.Batch).ToString("F1", inv)} | {(s.DenseCycles / (double)s.Batch).ToString("F1", inv)} | {s.TlmmBytes} | {s.DenseBytes} |");
        sb.AppendLine().AppendLine("Off-chip weight bytes per weight (weight lines in their slots, whole port beats; parameters not counted):").AppendLine();
        sb.AppendLine("| array | TLMM | dense | dense / TLMM |");
        sb.AppendLine("|---|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Size} | {r.TlmmBytesPerWeight.ToString("F3", inv)} | {r.DenseBytesPerWeight.ToString("F3", inv)} | {(r.DenseBytesPerWeight / r.TlmmBytesPerWeight).ToString("F2", inv)} |");
        if (rows.Any(r => r.Synth.Count > 0))
        {
            sb.AppendLine().AppendLine("yosys `synth_xilinx -flatten` (Xilinx 7-series), and with `-nodsp`. A whole engine is the GEMM shell (parameter loads, MAC issue, int32 " +
                                       "accumulators per block row, the drain and its requantizer: arrayRows 32x32-bit multipliers, shared by both engines) with its datapath; " +
                                       "the datapath alone is the dense engine's MAC trees or TLMM's tables, lookup and negate:").AppendLine();
            sb.AppendLine("| array | module | LUT | FF | CARRY4 | DSP48E1 | LUT -nodsp | FF -nodsp |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
            foreach (var r in rows)
                foreach (var (m, x) in r.Synth)
                    sb.AppendLine(x is null ? $"| {r.Size} | {m} | failed | | | | | |"
                        : $"| {r.Size} | {m} | {x.Lut} | {x.Ff} | {x.Carry} | {x.Dsp} | {x.LutNoDsp} | {x.FfNoDsp} |");
        }
        return sb.ToString();
    }
}
