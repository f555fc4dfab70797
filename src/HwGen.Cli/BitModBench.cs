using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.BitMod;
using HwGen.Rtl.Engines.Dense;

namespace HwGen.Cli;

/// <summary>
/// The BitMoD engine's figures: quantization error of MoD-3 and MoD-4 against INT3 and INT4 (groups of 128, 8-bit group scales)
/// on the digits examples' weights and on Gaussian and Laplacian random weights; and the digits MLP compiled with int8 (dense),
/// MoD-4 and MoD-3: accuracy of the golden model (bit-exact with the RTL, tested) on the 450 held-back digits, batch-1 cycles
/// (estimated = simulated without stalls) and off-chip bytes.
/// </summary>
public static class BitModBench
{
    public sealed record ErrorRow(string Source, string Spec, double RelativeMse, double RelativeMax, string Types);

    public sealed record ModelRow(string Name, double Accuracy, long Cycles, long OffChipBytes, double WeightBytesPerWeight);

    static readonly (string Name, bool Mod, int Bits)[] Specs = [("INT3", false, 3), ("MoD-3", true, 3), ("INT4", false, 4), ("MoD-4", true, 4)];

    public static (List<ErrorRow> Errors, List<ModelRow> Models) Run(string examples, bool quick, TextWriter progress)
    {
        var sources = new List<(string Name, double[] W, int K, int N)>();
        foreach (var ex in new[] { "mlp_digits", "qonnx_mlp_digits", "tiny_vit_digits" })
        {
            var c = Flow.Compile(Path.Combine(examples, ex, "model.onnx"), HwConfig.Default with { Scheduler = "greedy" });
            foreach (var g in c.Graph.Ops.OfType<QGemm>())
                sources.Add(($"{ex} {g.Name} ({g.K}x{g.N})", [.. g.Weights.Select((w, i) => w * g.RealMultiplier[i % g.N])], g.K, g.N));
        }
        var rng = new Random(14);
        int size = quick ? 128 : 512;
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        double Laplace() { double u = rng.NextDouble() - 0.5; return -Math.Sign(u) * Math.Log(1 - 2 * Math.Abs(u)); }
        sources.Add(($"Gaussian {size}x{size}", [.. Enumerable.Range(0, size * size).Select(_ => Gauss())], size, size));
        sources.Add(($"Laplacian {size}x{size}", [.. Enumerable.Range(0, size * size).Select(_ => Laplace())], size, size));
        var errors = new List<ErrorRow>();
        foreach (var (name, w, k, n) in sources)
            foreach (var (spec, mod, bits) in Specs)
            {
                var q = BitModQuantizer.Quantize(w, k, n, new ModSpec(mod, bits, 128, 8));
                var types = q.Types.GroupBy(t => t).OrderBy(h => h.Key).Select(h => $"{ModType.Of(bits, h.Key).Name} {h.Count()}");
                errors.Add(new ErrorRow(name, spec, q.RelativeMse, q.RelativeMax, string.Join(", ", types)));
            }
        progress.WriteLine($"  quantization error: {sources.Count} weight sets x {Specs.Length} formats");

        var models = new List<ModelRow>();
        string digits = Path.Combine(examples, "mlp_digits");
        var x = Npy.Read(Path.Combine(digits, "test_x.npy"));
        var labels = Npy.Read(Path.Combine(digits, "test_y.npy"));
        foreach (var (name, layers, bits) in new[] { ("int8 (dense)", "", 4), ("MoD-4", "*", 4), ("INT4", "*=int4", 4), ("MoD-3", "*", 3), ("INT3", "*=int3", 3) })
        {
            var cfg = HwConfig.Default with { Scheduler = "greedy", BitmodLayers = layers, BitmodBits = bits };
            string path = Path.Combine(digits, "model.onnx");
            var one = Flow.Compile(path, cfg);
            var all = Flow.Compile(path, cfg, batch: x.Shape[0]);
            var logits = HardwareModel.Outputs(all.Graph, Flow.CheckInputs(all.Graph, [x], "test_x.npy"))[0];
            int correct = Flow.Classes(logits).Where((c, i) => c == (int)labels.Data[i]).Count();
            var gemms = one.Graph.Ops.OfType<QGemm>().ToList();
            double perWeight = gemms.Sum(g => (g.Groups is null ? new DenseLayout(g, cfg) : BitModEngine.Layout(g, cfg)).WeightBytes) / (double)gemms.Sum(g => (long)g.K * g.N);
            models.Add(new ModelRow(name, correct / (double)x.Shape[0], one.Design.EstimatedCycles, one.Design.OffChipBytesMoved, perWeight));
            progress.WriteLine($"  mlp_digits {name}: {correct}/{x.Shape[0]} correct, {one.Design.EstimatedCycles} cycles at batch 1");
        }
        return (errors, models);
    }

    public static string Markdown((List<ErrorRow> Errors, List<ModelRow> Models) r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("Quantization error of the BitMoD quantizer (`BitModQuantizer`: groups of 128 along the input dimension, 8-bit integer group scales " +
                      "under a per-channel scale; MoD: per group the least-error of FP with ER+, ER-, EA+ or EA-; INT: symmetric INT). Relative MSE is the " +
                      "error's power over the weights' (mean square); max is the largest |error| over the largest |weight|. The digits layers have fewer " +
                      "than 128 inputs: a group is a whole column there.").AppendLine();
        sb.AppendLine("| weights | format | relative MSE | max error / max abs w | datatypes chosen (groups) |");
        sb.AppendLine("|---|---|---:|---:|---|");
        foreach (var e in r.Errors)
            sb.AppendLine($"| {e.Source} | {e.Spec} | {e.RelativeMse.ToString("0.00000", inv)} | {e.RelativeMax.ToString("0.0000", inv)} | {e.Types} |");
        sb.AppendLine().AppendLine("The digits MLP (examples/mlp_digits, 64-48-24-10, default 4x8 config, greedy scheduler) with every layer on the dense engine (int8) or " +
                                   "on BitMoD (`bitmodLayers` `*`, groups of 128): accuracy of the golden model on the 450 held-back digits (the RTL is bit-exact " +
                                   "with it: tests), batch-1 estimated cycles (= simulated without stalls) and off-chip bytes, and weight bytes per weight off chip " +
                                   "(code and header lines in their slots, whole beats).").AppendLine();
        sb.AppendLine("| layers | accuracy | cycles, batch 1 | off-chip bytes, batch 1 | weight bytes per weight |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var m in r.Models)
            sb.AppendLine($"| {m.Name} | {m.Accuracy.ToString("P2", inv)} | {m.Cycles} | {m.OffChipBytes} | {m.WeightBytesPerWeight.ToString("0.000", inv)} |");
        return sb.ToString();
    }
}
