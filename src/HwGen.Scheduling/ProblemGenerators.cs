namespace HwGen.Scheduling;

/// <summary>Scheduling problems for tests and benchmarks, deterministic for a seed.</summary>
public static class ProblemGenerators
{
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
}
