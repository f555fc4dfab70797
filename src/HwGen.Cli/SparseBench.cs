using System.Globalization;
using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Rtl.Engines;

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
    public sealed record Row(string Masks, double Sparsity, long NonZeros, long DenseNonZeros, long Macs, long DenseMacs, double Accuracy, long EngineCycles, long DesignCycles);

    public sealed record Result(IReadOnlyList<Row> Rows, int Calibration, int Evaluated, double DenseAccuracy, long DenseAttentionCycles, long DenseCycles);

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
        double Accuracy(Graph graph)
        {
            var classes = Flow.Classes(Flow.GoldenOutputs(graph, evaluation, "test_x.npy"));
            return classes.Select((c, i) => c == (int)labels.Data[half + i] ? 1 : 0).Sum() / (double)classes.Length;
        }
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
            rows.Add(new Row(name, 1 - nz / (double)all, nz, all, macs, denseMacs, accuracy, engine, compiled.Design.EstimatedCycles));
            progress.WriteLine($"  {name}: {nz}/{all} non-zeros, accuracy {accuracy:P2}");
        }
        var measured = TransformerBench.Measure(modelPath, 1, Hardware);
        return new Result(rows, half, n - half, denseAccuracy, measured.Attention, measured.Cycles);
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
        sb.AppendLine("| masks | sparsity | non-zeros | Q·Kᵀ + P·V MACs | MACs / dense | attention cycles (4x16) | dense / sparse | design cycles | accuracy |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        sb.AppendLine($"| dense attention (hw.qmatmul, hw.qsoftmax) | 0.0 % | | | | {r.DenseAttentionCycles} | 1.00 | {r.DenseCycles} | {(100 * r.DenseAccuracy).ToString("F2", inv)} % |");
        foreach (var x in r.Rows)
            sb.AppendLine($"| {x.Masks} | {(100 * x.Sparsity).ToString("F1", inv)} % | {x.NonZeros} / {x.DenseNonZeros} | {x.Macs} | " +
                $"{(x.Macs / (double)x.DenseMacs).ToString("F3", inv)} | {x.EngineCycles} | {(r.DenseAttentionCycles / (double)x.EngineCycles).ToString("F2", inv)} | " +
                $"{x.DesignCycles} | {(100 * x.Accuracy).ToString("F2", inv)} % |");
        sb.AppendLine();
        sb.AppendLine($"- Attention cycles: busy cycles of the attention instructions in the compiled design at 4x16, batch 1 (cycle model = " +
            "simulation without stalls, tested): dense, the Q·Kᵀ and P·V products, the score scale and the softmax (the same instructions at " +
            "every sparsity: masked dense attention's cycles do not fall); sparse, the sparse engine's SATT instructions, one at a time (one " +
            "query row and head against one block of 4 key rows: the query row's lines and each kept key row's, the softmax's three passes " +
            "over the row's scores, each kept value row's, the row's output lines). Design cycles: the whole model's estimate.");
        sb.AppendLine("- MACs are the work at the non-zeros (non-zeros x (dk + dv)).");
        sb.AppendLine("- Float (torch) accuracy is 95.33 % on all 450 held-back digits (examples/tiny_vit_digits/float_accuracy.txt); the integer dense model's on this half is the first row.");
        sb.AppendLine("- Top-k at 90 % keeps k = 2 of 16 columns per row (87.5 %); the Λ and ViTCoD rows are not causal (a ViT attends both ways).");
        return sb.ToString();
    }
}
