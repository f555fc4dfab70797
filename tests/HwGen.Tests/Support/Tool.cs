using System.Diagnostics;

namespace HwGen.Tests.Support;

/// <summary>Runs an external tool (verilator, yosys) and returns its exit code with stdout and stderr.</summary>
public static class Tool
{
    public static (int Exit, string Output) Run(string exe, string args, string cwd)
    {
        var psi = new ProcessStartInfo(exe, args) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, o.Result + e.Result);
    }

    /// <summary>Every Verilog file of a design directory, relative to it, in order: the argument list for verilator or yosys.</summary>
    public static string VerilogFiles(string design) =>
        string.Join(' ', Directory.GetFiles(Path.Combine(design, "rtl"), "*.v").Order(StringComparer.Ordinal).Select(f => "rtl/" + Path.GetFileName(f)));
}
