using System.Diagnostics;
using System.Text.RegularExpressions;
using HwGen.Core;

namespace HwGen.Cli.Regress;

/// <summary>Resources of a design directory's RTL as yosys maps it to Xilinx 7-series (as bench/synth.sh does): LUTs, flip-flops, DSPs.</summary>
public static partial class Yosys
{
    public static Dictionary<string, double> Synthesize(string dir)
    {
        var stat = Path.Combine(dir, "build", "yosys-stat.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(stat)!);
        var psi = new ProcessStartInfo("yosys") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-q", "-p", $"read_verilog rtl/*.v; synth_xilinx -top hwgen_top -flatten; tee -q -o {stat} stat" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new HwGenException("yosys did not start");
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(stat))
            throw HwGenException.At(dir, null, $"yosys failed (exit {p.ExitCode}): {(error.Result + output.Result).Trim().Split('\n')[^1]}");
        return Parse(File.ReadAllText(stat));
    }

    /// <summary>Sums the cell counts of yosys' "stat" for the top module: LUT1-LUT6, FDRE/FDSE/FDCE/FDPE and DSP48E1.</summary>
    public static Dictionary<string, double> Parse(string stat)
    {
        double Sum(Regex re) => re.Matches(stat).Sum(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        return new() { ["luts"] = Sum(LutRe()), ["ffs"] = Sum(FfRe()), ["dsps"] = Sum(DspRe()) };
    }

    [GeneratedRegex(@"^\s+LUT[1-6]\s+(\d+)\s*$", RegexOptions.Multiline)] private static partial Regex LutRe();
    [GeneratedRegex(@"^\s+FD[RSCP]E\s+(\d+)\s*$", RegexOptions.Multiline)] private static partial Regex FfRe();
    [GeneratedRegex(@"^\s+DSP48E1\s+(\d+)\s*$", RegexOptions.Multiline)] private static partial Regex DspRe();
}
