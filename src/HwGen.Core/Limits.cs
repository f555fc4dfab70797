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

    /// <summary>Tasks in one scratchpad schedule: 2^14. The compile is linear in the task count but heavy per task, about
    /// 0.5 ms and 30 KB greedy (mlp_digits on a 64x1 array with a 512 B scratchpad: 4,464 tasks, 2.9 s and 190 MB; 24 s and
    /// 1.4 GB with the default solver, whose windows its deterministic budget bounds), so this keeps a compile near 10 s
    /// and 0.5 GB. Beyond it the design is refused before anything of its size is allocated.</summary>
    public const int MaxScheduleTasks = 1 << 14;

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
