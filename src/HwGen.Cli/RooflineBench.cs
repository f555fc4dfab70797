using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Passes;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Program;

namespace HwGen.Cli;

/// <summary>
/// The roofline benchmark: estimated cycles of whole designs (equal to the simulated cycles without stalls, as the RTL
/// tests check) against the bound max(MACs / (rows x cols), compulsory bytes / portBytes), where the compulsory bytes
/// are the weights (1 byte each), the per-channel parameters (9 bytes per output channel), the graph input and the graph
/// output: what any design must move once. Models: the two examples and random MLPs of 64 to 1024 features (3 layers) and 4096 (1 layer, batch 1 only), at batch 1
/// and 64, on 4x8 and 16x16 arrays. The greedy scheduler is used (the exact one only changes spills, which these
/// 64 KiB scratchpads have few of).
/// </summary>
public static class RooflineBench
{
    public sealed record Row(string Model, int Batch, string Array, int ArraySize, long Macs, long Bytes, long MacBound, long MemBound, long Cycles,
        long GemmCycles, long BytesMoved)
    {
        public long Bound => Math.Max(MacBound, MemBound);
        public double Ratio => Cycles / (double)Bound;
        /// <summary>MAC activity while GEMM instructions run.</summary>
        public double GemmUtilization => GemmCycles == 0 ? 0 : Macs / (double)GemmCycles / ArraySize;
    }

    public static IEnumerable<(string Name, Func<int, HwConfig, Design> Compile)> Models(bool quick)
    {
        foreach (var name in new[] { "mlp_digits", "ffn_digits" })
        {
            var path = Path.Combine(AppContext.BaseDirectory, "examples", name, "model.onnx");
            if (File.Exists(path)) yield return (name, (batch, cfg) => Flow.Compile(path, cfg, batch: batch).Design);
        }
        foreach (var (width, layers) in quick ? new[] { (64, 3) } : [(64, 3), (256, 3), (1024, 3), (4096, 1)])
            yield return ($"mlp-{width}x{layers}", (batch, cfg) => RandomMlp(width, layers, batch, cfg));
    }

    /// <summary>A random int8 MLP of <paramref name="layers"/> square layers with ReLU, built directly as HwGen IR (seeded); with
    /// <paramref name="ternary"/> its weights are -1, 0 or 1.</summary>
    public static Design RandomMlp(int width, int layers, int batch, HwConfig cfg, bool ternary = false)
    {
        var rng = new Random(width * 31 + layers);
        var g = new Graph($"mlp{width}");
        var q = QuantParams.PerTensor(1.0 / 64, 0);
        var x = new Value("x", new TensorType(DType.Float32, [batch, width]));
        g.Inputs.Add(x);
        var v = new Value("x_q", new TensorType(DType.Int8, [batch, width], q));
        g.Ops.Add(new Quantize("quantize", x, v, DType.Int8, q));
        for (int l = 0; l < layers; l++)
        {
            var y = new Value($"h{l}", new TensorType(DType.Int8, [batch, width], q));
            g.Ops.Add(new QGemm($"fc{l}", v, y)
            {
                K = width, N = width, InputZeroPoint = 0, ClampMin = 0, ClampMax = 127, OutputQuant = q,
                Weights = Enumerable.Range(0, width * width).Select(_ => ternary ? rng.Next(-1, 2) : rng.Next(-127, 128)).ToArray(),
                Bias = Enumerable.Range(0, width).Select(_ => rng.Next(-512, 512)).ToArray(),
                RealMultiplier = Enumerable.Range(0, width).Select(_ => 4.0 / (width * 64.0)).ToArray(),
            });
            v = y;
        }
        var outV = new Value("y", new TensorType(DType.Float32, [batch, width]));
        g.Ops.Add(new Dequantize("dequantize", v, outV));
        g.Outputs.Add(outV);
        Verifier.Verify(g, "RandomMlp");
        Pipeline.Run(g, cfg, Pipeline.Passes);
        return DesignBuilder.Build(g, cfg, g.Name);
    }

    public static Row Measure(string model, int batch, HwConfig cfg, Design d)
    {
        var gemms = d.Graph.Ops.OfType<QGemm>().ToList();
        long rows(QGemm q) => ShapeUtil.Rows(q.Input.Type.Shape);
        long macs = gemms.Sum(q => rows(q) * q.K * q.N);
        long bytes = gemms.Sum(q => (long)q.K * q.N + (long)DenseEngine.ParamBytesPerColumn * q.N)
                     + d.InputTensors.Sum(s => (long)s.Rows * s.Features) + d.OutputTensors.Sum(s => (long)s.Rows * s.Features);
        long gemmCycles = d.Program.Select((i, n) => i is Gemm ? d.Timings[n].Busy : 0).Sum();
        int size = cfg.ArrayRows * cfg.ArrayCols;
        return new Row(model, batch, $"{cfg.ArrayRows}x{cfg.ArrayCols}", size, macs, bytes, (macs + size - 1) / size,
            (bytes + cfg.PortBytes - 1) / cfg.PortBytes, d.EstimatedCycles, gemmCycles, d.OffChipBytesMoved);
    }

    public static List<Row> Run(bool quick, TextWriter progress)
    {
        var rows = new List<Row>();
        foreach (var (name, compile) in Models(quick))
            foreach (var batch in new[] { 1, 64 })
                foreach (var (r, c) in new[] { (4, 8), (16, 16) })
                {
                    if (name == "mlp-4096x1" && batch > 1) continue;  // 16.8M parameters x 64 rows: minutes and gigabytes per compile
                    var cfg = new HwConfig { ArrayRows = r, ArrayCols = c, Scheduler = "greedy" };
                    var row = Measure(name, batch, cfg, compile(batch, cfg));
                    rows.Add(row);
                    progress.WriteLine($"  {name} batch {batch} {row.Array}: {row.Cycles} cycles, {row.Ratio:F2}x the bound");
                }
        return rows;
    }

    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("Estimated cycles (= simulated without stalls) against the roofline bound max(MAC bound, memory bound); MAC bound = MACs / (rows x cols), " +
                      "memory bound = compulsory bytes (weights, 9 B of parameters per channel, graph input and output) / 8-byte port; greedy scheduler, 64 KiB scratchpad " +
                      "in four banks (activations in two, constants in two). The design is decoupled: the DMA, the dense and the vector engine run at once, ordered by " +
                      "dependency tokens, and the DMA pipelines its transfers; GEMM MAC utilization is the MACs over the cycles the dense engine is busy.").AppendLine();
        sb.AppendLine("| model | batch | array | MACs | compulsory B | MAC bound | memory bound | cycles | x bound | GEMM MAC utilization | off-chip B moved |");
        sb.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Model} | {r.Batch} | {r.Array} | {r.Macs} | {r.Bytes} | {r.MacBound} | {r.MemBound} | {r.Cycles} | {r.Ratio.ToString("F2", inv)} | " +
                          $"{r.GemmUtilization.ToString("P0", inv)} | {r.BytesMoved} |");
        sb.AppendLine();
        foreach (var batch in rows.Select(r => r.Batch).Distinct())
        {
            var b = rows.Where(r => r.Batch == batch).ToList();
            sb.AppendLine($"- batch {batch}: median {Median(b.Select(r => r.Ratio)).ToString("F2", inv)}x the bound (worst {b.Max(r => r.Ratio).ToString("F2", inv)}x), " +
                          $"median GEMM MAC utilization {Median(b.Select(r => r.GemmUtilization)).ToString("P0", inv)}");
        }
        return sb.ToString();
    }

    static double Median(IEnumerable<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
