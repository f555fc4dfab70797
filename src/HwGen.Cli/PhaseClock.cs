using System.Diagnostics;

namespace HwGen.Cli;

/// <summary>Wall time, processor time (user and system, all threads), peak resident memory and managed bytes allocated of
/// one phase of a compile.</summary>
public sealed record PhaseCost(string Phase, double Seconds, long PeakBytes, long AllocatedBytes, double CpuSeconds = 0);

/// <summary>
/// Times the phases of a compile in this process: <see cref="Start"/> ends the running phase and begins the next. The peak
/// resident set of a phase is the kernel's high-water mark (VmHWM in /proc/self/status), reset at the start of every phase
/// (writing 5 to /proc/self/clear_refs), so each phase gets its own peak. Where that is not available the process's peak
/// working set is used, which only grows: each phase then reports the peak so far (<see cref="PerPhasePeaks"/> says which).
/// </summary>
public sealed class PhaseClock
{
    readonly List<PhaseCost> phases = [];
    readonly Stopwatch watch = new();
    string? current;
    long allocatedAtStart;
    TimeSpan cpuAtStart;

    /// <summary>Whether each phase's peak is its own (true on Linux) or the process's peak so far.</summary>
    public bool PerPhasePeaks { get; } = TryResetPeak();

    public IReadOnlyList<PhaseCost> Phases => phases;

    /// <summary>Ends the running phase, if any, and starts <paramref name="phase"/>.</summary>
    public void Start(string phase)
    {
        Stop();
        current = phase;
        if (PerPhasePeaks) TryResetPeak();
        allocatedAtStart = GC.GetTotalAllocatedBytes();
        cpuAtStart = Cpu();
        watch.Restart();
    }

    /// <summary>Ends the running phase, if any.</summary>
    public void Stop()
    {
        if (current is null) return;
        watch.Stop();
        phases.Add(new PhaseCost(current, watch.Elapsed.TotalSeconds, PeakBytes(), GC.GetTotalAllocatedBytes() - allocatedAtStart,
            (Cpu() - cpuAtStart).TotalSeconds));
        current = null;
    }

    /// <summary>The resident high-water mark since the last reset (VmHWM), or the process's peak working set.</summary>
    public static long PeakBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }

    static TimeSpan Cpu()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }

    static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { return false; }
    }
}
