namespace HwGen.Core;

/// <summary>
/// The sizes HwGen takes, in one place. Each is checked before anything of that size is allocated, so a model, batch or
/// config beyond them is one error in bounded time and memory (the ONNX validator, the .npy reader, shape inference,
/// constant folding and the scheduler ask here).
/// </summary>
public static class Limits
{
    /// <summary>Elements of one tensor: 2^24 (16 Mi). The compiler holds tensors as doubles (128 MiB at the limit) and the
    /// testbench writes them as hex; at 8 bytes an element at most, such a tensor is 128 MiB of the design's 4 GiB (32-bit)
    /// off-chip address space.</summary>
    public const long MaxTensorElements = 1L << 24;

    /// <summary>Largest dimension: ONNX dims are int64, HwGen's shapes int32.</summary>
    public const long MaxDim = int.MaxValue;

    /// <summary>Tasks in one scratchpad schedule: 2^18 (262,144; it was 2^14). Every stage's cost per task is bounded: the
    /// greedy's state per step is the resident set (bounded by the scratchpad), its next-use lookups are binary searches (a
    /// weight tile has one use per row block), and divide and conquer keeps residency only at its window ends and tells
    /// off-chip tensors by the step they were stored (a copy of the off-chip set per step made it quadratic: 921 MB on
    /// tiny_vit_digits at batch 16, 307 MB now); its exact solves draw from the compile's fixed budget; the manifest and charts,
    /// which grow with the program, are streamed to their files. What stays is linear: the schedule, program, tokens and cycle
    /// model are held whole, about 7 KB and 0.15 ms of processor time a task (mlp_digits at batch 65,536 on 4x8, greedy:
    /// 180,224 tasks, 1.30 GB peak, 28 s of processor time; 5.2 GB before), so a compile at the limit takes about 2 GB and
    /// 40 s of processor time. The tile builder counts the tasks as it makes them and stops at the limit, so a design beyond
    /// it is one error in bounded time and memory.</summary>
    public const int MaxScheduleTasks = 1 << 18;

    /// <summary>Why <paramref name="dims"/> cannot be the shape of a tensor HwGen holds (a negative dim, a dim beyond int32,
    /// more than <see cref="MaxTensorElements"/> elements), or null when it can. Never overflows.</summary>
    public static string? ShapeProblem(IEnumerable<long> dims)
    {
        long n = 1;
        var list = dims.ToList();
        foreach (var d in list)
        {
            if (d < 0) return $"dim {d} is negative";
            if (d > MaxDim) return $"dim {d} is beyond int32";
            n = n == 0 || d == 0 ? 0 : n > MaxTensorElements / d + 1 ? MaxTensorElements + 1 : n * d;
        }
        return n > MaxTensorElements
            ? $"shape [{string.Join("x", list)}] has more than {MaxTensorElements} elements (2^24), the most HwGen holds in one tensor"
            : null;
    }

    /// <inheritdoc cref="ShapeProblem(IEnumerable{long})"/>
    public static string? ShapeProblem(IEnumerable<int> dims) => ShapeProblem(dims.Select(d => (long)d));
}
