using System.Text;
using HwGen.Core;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Sim;

/// <summary>The values of testbenches/tb_hwgen.v.sbn.</summary>
public sealed record TestbenchValues(string Header, string Model, int PortBits, int PortBytes, long MemWords, int InputCount, string InputsEnd, int ExpectedCount, string ExpectedEnd,
    long EstimatedCycles, long MaxCycles, string WatchdogRule, string StallExpr, string InstrStallExpr);

/// <summary>
/// Writes the testbench of a design: tb/tb_hwgen.v (from testbenches/tb_hwgen.v.sbn), tb/memory.bin (the static
/// off-chip image, binary), tb/inputs.hex (the quantized inputs), tb/expected.hex (every output element the golden model
/// gives) and the two scripts that build and run it with Verilator or Icarus alone.
/// </summary>
public static class Testbench
{
    /// <summary>The watchdog's bound: this many times the estimated cycles (the stalling memory answers 3 requests in 4),
    /// plus <see cref="WatchdogMargin"/>, and never below <see cref="WatchdogFloor"/>.</summary>
    public const int WatchdogFactor = 4;
    public const int WatchdogMargin = 1000;
    public const int WatchdogFloor = 10_000;

    public static long WatchdogCycles(long estimatedCycles) => Math.Max(WatchdogFloor, estimatedCycles * WatchdogFactor + WatchdogMargin);

    /// <summary>The output elements the testbench compares: every element of every device output.</summary>
    public static int ElementCount(Design d) => d.OutputTensors.Sum(s => s.Rows * s.Features);

    /// <summary>The last line of expected.hex: 0x4857 ("HW") and the element count, so that a file cut short, emptied,
    /// doubled or missing, or a testbench whose count was edited, fails before the run.</summary>
    public static string EndLine(int elements) => $"4857{elements:x8}";

    /// <summary>Writes vectors and testbench for one run. <paramref name="expected"/> holds the int8 outputs of the
    /// hardware model, one tensor per device output.</summary>
    public static void Write(Design d, string dir, IReadOnlyList<Tensor> quantizedInputs, IReadOnlyList<Tensor> expected)
    {
        var tb = Path.Combine(dir, "tb");
        Directory.CreateDirectory(tb);
        WriteImage(d, tb);
        WriteVectors(d, tb, quantizedInputs, expected);
        var rtl = RtlEmitter.Prepare(d);
        int n = ElementCount(d), ni = d.InputTensors.Sum(s => s.Rows * s.Features);
        var values = new TestbenchValues(rtl.Header, d.ModelName, rtl.PortBits, d.Config.PortBytes, d.MemoryWords, ni, EndLine(ni), n, EndLine(n),
            d.EstimatedCycles, WatchdogCycles(d.EstimatedCycles),
            $"{WatchdogFactor} x the estimated {d.EstimatedCycles} cycles + {WatchdogMargin}, at least {WatchdogFloor}", Ready("lfsr"), Ready("ilfsr"));
        File.WriteAllText(Path.Combine(tb, "tb_hwgen.v"), Templates.Render("testbenches", "tb_hwgen.v.sbn", values));
        WriteScripts(dir, "tb_hwgen");
    }

    /// <summary>A port's ready: always under +nostall, else three cycles in four by its LFSR.</summary>
    static string Ready(string lfsr) => $"nostall | {lfsr}[0] | {lfsr}[1]";

    /// <summary>The off-chip image file: the static image (program, weights, constants) byte for byte, byte a of the file
    /// being byte a of off-chip memory (<see cref="OffChipImage"/>). Both simulators load it with <c>$fread</c>.</summary>
    public const string ImageFile = "memory.bin";

    /// <summary>Writes tb/memory.bin, streamed a piece at a time (<see cref="OffChipImage.Write"/>).</summary>
    public static void WriteImage(Design d, string tb)
    {
        using var mem = new FileStream(Path.Combine(tb, ImageFile), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        d.Image.Write(mem, 0, d.Image.Words);
    }

    /// <summary>Writes the vectors of one run: inputs.hex (the quantized input elements the host writes into the image before
    /// start) and expected.hex (every output element the golden model gives), one element a line, {word, byte, value}, then
    /// <see cref="EndLine"/>.</summary>
    public static void WriteVectors(Design d, string tb, IReadOnlyList<Tensor> quantizedInputs, IReadOnlyList<Tensor> expected)
    {
        WriteElements(d, Path.Combine(tb, "inputs.hex"), d.InputTensors.ToList(), quantizedInputs);
        WriteElements(d, Path.Combine(tb, "expected.hex"), d.OutputTensors.ToList(), expected);
    }

    static void WriteElements(Design d, string path, IReadOnlyList<Storage> tensors, IReadOnlyList<Tensor> codes)
    {
        int pw = d.Config.PortBytes, n = 0;
        using var ex = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        for (int o = 0; o < tensors.Count; o++)
        {
            var s = tensors[o];
            for (int m = 0; m < s.Rows; m++)
                for (int f = 0; f < s.Features; f++, n++)
                {
                    long off = d.ByteOffset(s, m, f);
                    ex.Write($"{off / pw:x8}{off % pw:x2}{(byte)(sbyte)codes[o].Data[m * s.Features + f]:x2}\n");
                }
        }
        ex.Write(EndLine(n) + "\n");
    }

    /// <summary>Writes run_verilator.sh and run_icarus.sh, which build rtl/*.v with tb/&lt;top&gt;.v and run it in tb/.</summary>
    public static void WriteScripts(string dir, string top)
    {
        const string common = "#!/bin/sh\n# Generated by HwGen. Builds and runs the testbench; extra arguments go to the simulation\n" +
                              "# (+nostall: memory never stalls, for cycle counts that match the report).\nset -e\ncd \"$(dirname \"$0\")\"\nmkdir -p build\n";
        var v = common + $"verilator --binary -j 2 -Wno-fatal --top-module {top} -Mdir build/verilator rtl/*.v tb/{top}.v > build/verilator.log 2>&1 || {{ cat build/verilator.log; exit 1; }}\n" +
                $"cd tb && exec ../build/verilator/V{top} \"$@\"\n";
        var i = common + $"iverilog -g2012 -o build/icarus.vvp -s {top} rtl/*.v tb/{top}.v\ncd tb && exec vvp -n ../build/icarus.vvp \"$@\"\n";
        foreach (var (name, text) in new[] { ("run_verilator.sh", v), ("run_icarus.sh", i) })
        {
            var path = Path.Combine(dir, name);
            File.WriteAllText(path, text);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }
    }
}
