namespace HwGen.Scheduling;

/// <summary>Scheduling problems for tests and benchmarks, deterministic for a seed.</summary>
public static class ProblemGenerators
{
    /// <summary>The same graph on a scratchpad of <paramref name="banks"/> banks: the capacity rounded up to whole aligned
    /// banks and grown, a bank at a time, until every tensor and every op fits (Check passes).</summary>
    public static ScratchpadProblem WithBanks(ScratchpadProblem p, int banks)
    {
        long step = banks * p.Alignment;
        for (long cap = (p.Capacity + step - 1) / step * step; ; cap += step)
        {
            var b = new ScratchpadProblem(p.Name + $" {banks} banks", p.Ops, p.Tensors, cap, p.Alignment, banks)
                { DmaBytesPerCycle = p.DmaBytesPerCycle, DmaOverheadCycles = p.DmaOverheadCycles };
            try { b.Check(); return b; }
            catch (HwGen.Core.HwGenException) { }
        }
    }

    /// <summary>A random DAG: op i reads one or two earlier tensors (or a graph input) and a weight, and writes one
    /// tensor; tensors nobody reads are outputs. Capacity is <paramref name="capacityShare"/> of all bytes, at least
    /// what the largest op needs.</summary>
    /// <remarks>With <paramref name="chains"/>, about half the ops are split in two: the first part reads one operand and
    /// half the weights and produces nothing; the second must run right after it and produces the result.</remarks>
    public static ScratchpadProblem RandomDag(int seed, int ops, double capacityShare = 0.3, int maxUnits = 4, long unit = 64, bool weights = true, bool chains = false)
    {
        var rng = new Random(seed);
        var tensors = new List<SchedTensor>();
        var opList = new List<SchedOp>();
        int NewTensor(string name, TensorKind kind) { tensors.Add(new SchedTensor(tensors.Count, name, rng.Next(1, maxUnits + 1) * unit, kind)); return tensors.Count - 1; }
        var produced = new List<int> { NewTensor("x", TensorKind.Input) };
        for (int i = 0; i < ops; i++)
        {
            var ins = new List<int> { produced[rng.Next(Math.Max(0, produced.Count - 4), produced.Count)] };
            if (rng.NextDouble() < 0.4) ins.Add(produced[rng.Next(produced.Count)]);
            if (weights) ins.Add(NewTensor($"w{i}", TensorKind.Weight));
            int y = NewTensor($"t{i}", TensorKind.Intermediate);
            if (chains && rng.NextDouble() < 0.5)
            {
                int first = opList.Count;
                opList.Add(new SchedOp(first, $"op{i}a", [ins[0], NewTensor($"w{i}a", TensorKind.Weight)], []));
                opList.Add(new SchedOp(first + 1, $"op{i}b", ins.Skip(1).Distinct().ToList(), [y], After: first));
            }
            else opList.Add(new SchedOp(opList.Count, $"op{i}", ins.Distinct().ToList(), [y]));
            produced.Add(y);
        }
        var read = new HashSet<int>(opList.SelectMany(o => o.Inputs));
        for (int i = 0; i < tensors.Count; i++)
            if (tensors[i].Kind == TensorKind.Intermediate && !read.Contains(i)) tensors[i] = tensors[i] with { Kind = TensorKind.Output };
        long total = tensors.Sum(t => t.Bytes);
        long need = opList.Max(o => o.Inputs.Concat(o.Outputs).Sum(t => tensors[t].Bytes));
        long cap = Math.Max(need, (long)(total * capacityShare) / unit * unit);
        return new ScratchpadProblem($"random-{seed}-{ops}", opList, tensors, cap, unit);
    }

    /// <summary>Builds problems op by op; tensors are int8 byte counts.</summary>
    sealed class Builder(string name)
    {
        readonly List<SchedTensor> tensors = [];
        readonly List<SchedOp> ops = [];
        public int Tensor(string n, long bytes, TensorKind kind) { tensors.Add(new SchedTensor(tensors.Count, n, bytes, kind)); return tensors.Count - 1; }
        public int Op(string n, long outBytes, params int[] inputs)
        {
            int y = Tensor(n + ".out", outBytes, TensorKind.Intermediate);
            ops.Add(new SchedOp(ops.Count, n, inputs, [y]));
            return y;
        }
        /// <summary>Marks unread results as outputs; capacity is a share of all bytes, at least the largest op's need.</summary>
        public ScratchpadProblem Build(double share, long align)
        {
            var read = new HashSet<int>(ops.SelectMany(o => o.Inputs));
            for (int i = 0; i < tensors.Count; i++)
                if (tensors[i].Kind == TensorKind.Intermediate && !read.Contains(i)) tensors[i] = tensors[i] with { Kind = TensorKind.Output };
            long Al(long b) => (b + align - 1) / align * align;
            long need = ops.Max(o => o.Inputs.Concat(o.Outputs).Sum(t => Al(tensors[t].Bytes)));
            long cap = Math.Max(need, (long)(tensors.Sum(t => Al(t.Bytes)) * share) / align * align);
            return new ScratchpadProblem($"{name}@{share:0.##}", ops, tensors, cap, align);
        }
    }

    /// <summary>A transformer encoder block on int8 tensors: LayerNorm, Q/K/V projections, per-head scores, softmax
    /// and context, output projection, residual, LayerNorm, two-layer MLP with GELU, residual.</summary>
    public static ScratchpadProblem TransformerBlock(int seq, int dModel, int heads, int ffn, double share, long align = 64)
    {
        var b = new Builder($"transformer-s{seq}-d{dModel}-h{heads}");
        long act = (long)seq * dModel, head = act / heads;
        int W(string n, long bytes) => b.Tensor(n, bytes, TensorKind.Weight);
        int x = b.Tensor("x", act, TensorKind.Input);
        int ln1 = b.Op("ln1", act, x, W("ln1.gamma", 2 * dModel));
        int q = b.Op("q", act, ln1, W("wq", (long)dModel * dModel));
        int k = b.Op("k", act, ln1, W("wk", (long)dModel * dModel));
        int v = b.Op("v", act, ln1, W("wv", (long)dModel * dModel));
        var ctx = new List<int>();
        for (int h = 0; h < heads; h++)
        {
            int s = b.Op($"scores{h}", (long)seq * seq, q, k);
            int pr = b.Op($"softmax{h}", (long)seq * seq, s);
            ctx.Add(b.Op($"context{h}", head, pr, v));
        }
        int o = b.Op("out_proj", act, [.. ctx, W("wo", (long)dModel * dModel)]);
        int r1 = b.Op("residual1", act, x, o);
        int ln2 = b.Op("ln2", act, r1, W("ln2.gamma", 2 * dModel));
        int f1 = b.Op("ffn1", (long)seq * ffn, ln2, W("w1", (long)dModel * ffn));
        int g = b.Op("gelu", (long)seq * ffn, f1);
        int f2 = b.Op("ffn2", act, g, W("w2", (long)ffn * dModel));
        b.Op("residual2", act, r1, f2);
        return b.Build(share, align);
    }

    /// <summary>A residual CNN-like graph: blocks of two convolutions and a skip addition, halving the spatial size
    /// and doubling the channels every <paramref name="blocksPerStage"/> blocks.</summary>
    public static ScratchpadProblem ResidualCnn(int stages, int blocksPerStage, int size, int channels, double share, long align = 64)
    {
        var b = new Builder($"rescnn-{stages}x{blocksPerStage}");
        int x = b.Tensor("image", (long)size * size * 3, TensorKind.Input);
        x = b.Op("stem", (long)size * size * channels, x, b.Tensor("stem.w", 27L * channels, TensorKind.Weight));
        for (int s = 0; s < stages; s++)
        {
            for (int k = 0; k < blocksPerStage; k++)
            {
                bool down = s > 0 && k == 0;
                int cIn = channels;
                if (down) { size /= 2; channels *= 2; }
                long outBytes = (long)size * size * channels;
                int a = b.Op($"s{s}b{k}.conv1", outBytes, x, b.Tensor($"s{s}b{k}.w1", 9L * cIn * channels, TensorKind.Weight));
                int c = b.Op($"s{s}b{k}.conv2", outBytes, a, b.Tensor($"s{s}b{k}.w2", 9L * channels * channels, TensorKind.Weight));
                int skip = down ? b.Op($"s{s}b{k}.proj", outBytes, x, b.Tensor($"s{s}b{k}.wp", (long)cIn * channels, TensorKind.Weight)) : x;
                x = b.Op($"s{s}b{k}.add", outBytes, c, skip);
            }
        }
        b.Op("head", 10, x, b.Tensor("fc.w", (long)channels * 10, TensorKind.Weight));
        return b.Build(share, align);
    }
}
