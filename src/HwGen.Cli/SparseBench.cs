using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Program;

namespace HwGen.Cli;

/// <summary>
/// `hwgen bench sparse`: sparse attention on examples/tiny_vit_digits without fine-tuning. Per head, the columns each query row
/// attends most (the mean of the golden model's dense probabilities over the first half of the held-back digits, top-k per row)
/// at 0, 50, 75 and 90 % sparsity, a Λ mask (2 sinks, window 4) and ViTCoD's split of the 90 % masks; for each, the golden
/// model's accuracy on the other half with the masks (<c>sparseAttention</c>, the sparse kernel), the masks' non-zeros, and
/// the attention work (Q·Kᵀ and P·V MACs) the sparse engine does against the dense one's, and the sparse engine's cycles in the
/// compiled design (its busy cycles by the cycle model, equal to simulation without stalls, tested) against the dense attention's,
/// both at <see cref="Hardware"/> (4 lanes; arrayCols 16 so that a head of 16 features lies in one tile, as the engine needs).
/// </summary>
public static class SparseBench
{
    public sealed record Row(string Masks, double Sparsity, long NonZeros, long DenseNonZeros, long Macs, long DenseMacs, double Accuracy, long EngineCycles, long DesignCycles, int Satts);

    public sealed record Result(IReadOnlyList<Row> Rows, int Calibration, int Evaluated, double DenseAccuracy, long DenseAttentionCycles, long DenseCycles,
        IReadOnlyList<TunedRow> Tuned, double TunedDenseFloat, double TunedDenseAccuracy);

    /// <summary>A fine-tuned model of make_sparse.py: its masks as recognized, their sparsity, the float (torch) accuracy with the
    /// masks, the golden model's on all held-back digits, the sparse engine's busy cycles and the attention cycles of the same model
    /// compiled without <c>sparseAttention</c> (masked dense attention).</summary>
    public sealed record TunedRow(string Model, string Masks, double Sparsity, double FloatAccuracy, double Accuracy, long EngineCycles,
        long MaskedDenseCycles, long DesignCycles);

    /// <summary>make_sparse.py's models: file, key in sparse_accuracy.txt, what the masks are.</summary>
    static readonly (string File, string Key, string What)[] TunedModels =
    [
        ("model_sparse50.onnx", "sparse50", "top-k 50 % (k = 8 of 16)"),
        ("model_sparse90.onnx", "sparse90", "top-k 90 % (k = 2 of 16: 87.5 %)"),
        ("model_lambda.onnx", "lambda", "Λ (2 sinks, window 4)"),
    ];

    /// <summary>The array both the dense and the sparse designs are compiled for.</summary>
    static readonly HwConfig Hardware = new() { ArrayRows = 4, ArrayCols = 16, Scheduler = "greedy" };

    /// <summary>Sparsity levels of the top-k masks (k = round(16 (1 - s)), at least 1).</summary>
    static readonly double[] Levels = [0, 0.5, 0.75, 0.9];

    /// <summary>Runs on <paramref name="examples"/>/tiny_vit_digits (its model and held-back digits).</summary>
    public static Result Run(string examples, TextWriter progress)
    {
        var dir = Path.Combine(examples, "tiny_vit_digits");
        var modelPath = Path.Combine(dir, "model.onnx");
        var model = OnnxLoader.Load(modelPath);
        var x = Npy.Read(Path.Combine(dir, "test_x.npy"));
        var labels = Npy.Read(Path.Combine(dir, "test_y.npy"));
        int n = x.Shape[0], half = n / 2, per = (int)(x.Size / n);
        Tensor Rows(int from, int count) => new(x.Type, [count, .. x.Shape.Skip(1)], x.Data.Skip(from * per).Take(count * per).ToArray());
        var (calibration, evaluation) = (Rows(0, half), Rows(half, n - half));

        var dense = Graph(model, HwConfig.Default);
        var maps = MeanMaps(dense, calibration);
        var configs = new List<(string Name, Func<QSoftmax, AttentionMask[]> Masks)>();
        foreach (double s in Levels)
            configs.Add(($"top-k, {s * 100:F0} %", sm => maps[sm.Name].Select(m => TopK(m, K(m.GetLength(0), s))).ToArray()));
        configs.Add(("Λ (2 sinks, window 4)", sm => [new AttentionMask.Lambda(2, 4, false)]));
        configs.Add(("ViTCoD split of top-k 90 %, θ = 0.25", sm => maps[sm.Name].Select(m =>
            (AttentionMask)AttentionMask.Split(TopK(m, K(m.GetLength(0), 0.9)), 0.25, m.GetLength(0), m.GetLength(0))).ToArray()));

        var rows = new List<Row>();
        double Accuracy(Graph graph) => AccuracyOf(Flow.GoldenOutputs(graph, evaluation, "test_x.npy"), labels, half);
        double denseAccuracy = Accuracy(dense);
        progress.WriteLine($"  dense attention: accuracy {denseAccuracy:P2}");
        foreach (var (name, masksOf) in configs)
        {
            var softmaxes = dense.Ops.OfType<QSoftmax>().ToList();
            var entries = softmaxes.Select(sm => $"{sm.Name}={string.Join("/", masksOf(sm).Select(m => m.ToString()))}");
            var cfg = HwConfig.Default with { SparseAttention = string.Join(";", entries) };
            var graph = Graph(model, cfg);
            var attention = graph.Ops.OfType<QAttention>().ToList();
            long nz = 0, all = 0, macs = 0, denseMacs = 0;
            foreach (var a in attention)
                for (int h = 0; h < a.Heads; h++)
                {
                    long z = a.MaskOf(h).NonZeros(a.M, a.N);
                    nz += z;
                    all += (long)a.M * a.N;
                    macs += z * (a.Dk + a.Dv);
                    denseMacs += (long)a.M * a.N * (a.Dk + a.Dv);
                }
            double accuracy = Accuracy(graph);
            var compiled = Flow.Compile(modelPath, Hardware with { SparseAttention = cfg.SparseAttention }, batch: 1);
            long engine = compiled.Graph.Ops.OfType<QAttention>().Sum(a => compiled.Design.CostOf(a).Cycles);
            rows.Add(new Row(name, 1 - nz / (double)all, nz, all, macs, denseMacs, accuracy, engine, compiled.Design.EstimatedCycles,
                compiled.Design.Program.Count(i => i is HwGen.Rtl.Engines.SparseAttention.Satt)));
            progress.WriteLine($"  {name}: {nz}/{all} non-zeros, accuracy {accuracy:P2}");
        }
        var measured = TransformerBench.Measure(modelPath, 1, Hardware);
        var (tuned, tunedFloat, tunedDense) = RunTuned(dir, x, labels, progress);
        return new Result(rows, half, n - half, denseAccuracy, measured.Attention, measured.Cycles, tuned, tunedFloat, tunedDense);
    }

    /// <summary>The fine-tuned models with <c>sparseAttention: "*=model"</c> at <see cref="Hardware"/>: accuracy on all of
    /// <paramref name="x"/>, cycles at batch 1. Returns them, the dense model's float accuracy and its golden accuracy on all of <paramref name="x"/>.</summary>
    static (List<TunedRow> Rows, double DenseFloat, double DenseAccuracy) RunTuned(string dir, Tensor x, Tensor labels, TextWriter progress)
    {
        double Accuracy(string model, HwConfig cfg) => AccuracyOf(Flow.GoldenOutputs(OnnxLoader.Load(model), cfg, x, "test_x.npy"), labels, 0);
        var floats = File.ReadAllLines(Path.Combine(dir, "sparse_accuracy.txt")).Select(l => l.Split(' '))
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));
        var cfg = Hardware with { SparseAttention = "*=model" };
        var rows = new List<TunedRow>();
        foreach (var (file, key, what) in TunedModels)
        {
            var path = Path.Combine(dir, file);
            var compiled = Flow.Compile(path, cfg, batch: 1);
            var attention = compiled.Graph.Ops.OfType<QAttention>().ToList();
            var masks = attention.SelectMany(a => Enumerable.Range(0, a.Heads).Select(h => a.MaskOf(h) is AttentionMask.Csr ? "csr" : a.MaskOf(h).ToString())).Distinct();
            long nz = attention.Sum(a => Enumerable.Range(0, a.Heads).Sum(h => a.MaskOf(h).NonZeros(a.M, a.N)));
            long all = attention.Sum(a => (long)a.Heads * a.M * a.N);
            long engine = attention.Sum(a => compiled.Design.CostOf(a).Cycles);
            double accuracy = Accuracy(path, cfg);
            rows.Add(new TunedRow($"{file}: {what}", string.Join(", ", masks), 1 - nz / (double)all, floats[$"{key}_float"], accuracy, engine,
                TransformerBench.Measure(path, 1, Hardware).Attention, compiled.Design.EstimatedCycles));
            progress.WriteLine($"  fine-tuned {file}: {nz}/{all} non-zeros, accuracy {accuracy:P2}");
        }
        return (rows, floats["dense_float"], Accuracy(Path.Combine(dir, "model.onnx"), Hardware));
    }

    /// <summary>The share of <paramref name="logits"/>' rows whose class is the label, row i against label <paramref name="from"/> + i.</summary>
    static double AccuracyOf(Tensor logits, Tensor labels, int from)
    {
        var classes = Flow.Classes(logits);
        return classes.Select((c, i) => c == (int)labels.Data[from + i] ? 1 : 0).Sum() / (double)classes.Length;
    }

    static int K(int n, double sparsity) => Math.Max(1, (int)Math.Round(n * (1 - sparsity)));

    /// <summary>The integer graph at a batch of <see cref="Flow.GoldenChunk"/> digits, through the passes before engine selection
    /// (the sparse engine is no device engine yet, so it is never placed).</summary>
    static Graph Graph(OnnxModel model, HwConfig cfg)
    {
        var g = LowerOnnxToIr.Run(model, Flow.GoldenChunk);
        Verifier.Verify(g, "LowerOnnxToIr");
        Pipeline.Run(g, cfg, Pipeline.Passes.TakeWhile(p => p is not SelectEngines));
        return g;
    }

    /// <summary>Per softmax and head, the mean probability of each (query row, key column) over <paramref name="x"/>'s digits.</summary>
    static Dictionary<string, double[][,]> MeanMaps(Graph g, Tensor x)
    {
        var maps = new Dictionary<string, double[][,]>();
        int chunk = g.Inputs[0].Type.Shape[0], n = x.Shape[0], per = (int)(x.Size / n);
        for (int start = 0; start < n; start += chunk)
        {
            int count = Math.Min(chunk, n - start);
            var data = new double[chunk * per];
            for (int i = 0; i < chunk; i++) Array.Copy(x.Data, (long)Math.Min(start + i, n - 1) * per, data, (long)i * per, per);
            var env = HardwareModel.Run(g, Flow.CheckInputs(g, [new Tensor(x.Type, [chunk, .. x.Shape.Skip(1)], data)], "test_x.npy"));
            foreach (var sm in g.Ops.OfType<QSoftmax>())
            {
                var p = env[sm.Output];
                int t = p.Shape[^1], heads = p.Shape[^3];
                var m = maps.TryGetValue(sm.Name, out var have) ? have : maps[sm.Name] = Enumerable.Range(0, heads).Select(_ => new double[t, t]).ToArray();
                for (int b = 0; b < count; b++)
                    for (int h = 0; h < heads; h++)
                        for (int i = 0; i < t; i++)
                            for (int j = 0; j < t; j++)
                                m[h][i, j] += (p.Data[(((long)b * heads + h) * t + i) * t + j] - sm.OutputQuant.ZeroPoint) * sm.OutputQuant.Scale / n;
            }
        }
        return maps;
    }

    /// <summary>Each row's <paramref name="k"/> columns of highest mean probability (ties to the lower column), as CSR.</summary>
    static AttentionMask TopK(double[,] map, int k)
    {
        int t = map.GetLength(0);
        var keep = new bool[t * t];
        for (int i = 0; i < t; i++)
            foreach (int j in Enumerable.Range(0, t).OrderByDescending(j => map[i, j]).ThenBy(j => j).Take(k)) keep[i * t + j] = true;
        return AttentionMask.FromKeep(keep, t, t);
    }

    public static string Markdown(Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("Sparse attention on examples/tiny_vit_digits (2 layers x 2 heads, 16 tokens, dk = dv = 16; `hwgen bench sparse`), " +
            "no fine-tuning: the masks keep each query row's columns of highest mean probability (top-k per row and head, the golden model's " +
            $"dense probabilities averaged over the first {r.Calibration} held-back digits); accuracy is the golden model's with the masks " +
            $"(the sparse kernel, equal to masked dense attention) on the other {r.Evaluated}.");
        sb.AppendLine();
        sb.AppendLine("| masks | sparsity | non-zeros | Q·Kᵀ + P·V MACs | MACs / dense | attention cycles (4x16) | dense / sparse | SATTs (their fetch cycles) | design cycles | accuracy |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        sb.AppendLine($"| dense attention (hw.qmatmul, hw.qsoftmax) | 0.0 % | | | | {r.DenseAttentionCycles} | 1.00 | | {r.DenseCycles} | {(100 * r.DenseAccuracy).ToString("F2", inv)} % |");
        foreach (var x in r.Rows)
            sb.AppendLine($"| {x.Masks} | {(100 * x.Sparsity).ToString("F1", inv)} % | {x.NonZeros} / {x.DenseNonZeros} | {x.Macs} | " +
                $"{(x.Macs / (double)x.DenseMacs).ToString("F3", inv)} | {x.EngineCycles} | {(r.DenseAttentionCycles / (double)x.EngineCycles).ToString("F2", inv)} | " +
                $"{x.Satts} ({x.Satts * CycleModel.Fetch(Hardware)}) | {x.DesignCycles} | {(100 * x.Accuracy).ToString("F2", inv)} % |");
        sb.AppendLine();
        sb.AppendLine($"- Attention cycles: busy cycles of the attention instructions in the compiled design at 4x16, batch 1 (cycle model = " +
            "simulation without stalls, tested): dense, the Q·Kᵀ and P·V products, the score scale and the softmax (the same instructions at " +
            "every sparsity: masked dense attention's cycles do not fall); sparse, the sparse engine's SATT instructions (one query row and " +
            "head against one or two blocks of 4 key rows) from taking the first to retiring the last, overlapping ones counted once: its score, " +
            "softmax and weighted-sum stages work on three rows at once. Design cycles: the whole model's estimate.");
        sb.AppendLine($"- SATTs: the sparse engine's instructions; their fetch cycles: {CycleModel.Fetch(Hardware)} each (32 bytes over the " +
            $"{Hardware.PortBytes}-byte instruction port, one fetcher for all units), a floor under the engine's cycles that the column " +
            "masks in the instructions set.");
        sb.AppendLine("- MACs are the work at the non-zeros (non-zeros x (dk + dv)).");
        sb.AppendLine("- Float (torch) accuracy is 95.33 % on all 450 held-back digits (examples/tiny_vit_digits/float_accuracy.txt); the integer dense model's on this half is the first row.");
        sb.AppendLine("- Top-k at 90 % keeps k = 2 of 16 columns per row (87.5 %); the Λ and ViTCoD rows are not causal (a ViT attends both ways).");
        sb.AppendLine();
        sb.AppendLine("Fine-tuned with the masks (examples/tiny_vit_digits/make_sparse.py: top-k per row and head from the float model's mean " +
            "probabilities over the 1347 training digits, 8 epochs with the mask added before the softmax, the mask exported as an additive " +
            "constant, quantized to QDQ), compiled with `sparseAttention: \"*=model\"`; accuracy on all 450 held-back digits.");
        sb.AppendLine();
        sb.AppendLine("| model | masks (recognized) | sparsity | float accuracy | golden (= RTL) accuracy | sparse engine cycles (4x16) | masked dense attention cycles | dense / sparse | design cycles |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        sb.AppendLine($"| model.onnx: dense | | 0.0 % | {(100 * r.TunedDenseFloat).ToString("F2", inv)} % | {(100 * r.TunedDenseAccuracy).ToString("F2", inv)} % | | {r.DenseAttentionCycles} | | {r.DenseCycles} |");
        foreach (var t in r.Tuned)
            sb.AppendLine($"| {t.Model} | {t.Masks} | {(100 * t.Sparsity).ToString("F1", inv)} % | {(100 * t.FloatAccuracy).ToString("F2", inv)} % | " +
                $"{(100 * t.Accuracy).ToString("F2", inv)} % | {t.EngineCycles} | {t.MaskedDenseCycles} | " +
                $"{(t.MaskedDenseCycles / (double)t.EngineCycles).ToString("F2", inv)} | {t.DesignCycles} |");
        sb.AppendLine();
        sb.AppendLine("- Masked dense attention cycles: the same model compiled without `sparseAttention` (hw.qmatmul and the masked hw.qsoftmax), " +
            "its Q·Kᵀ, P·V, score scale and softmax busy cycles; dense / sparse is their ratio to the sparse engine's.");
        sb.AppendLine("- Resources (yosys, by hand): [sparse-resources.md](sparse-resources.md).");
        return sb.ToString();
    }
}
