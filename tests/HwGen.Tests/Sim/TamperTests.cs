using HwGen.Cli;
using HwGen.Core;
using HwGen.Sim;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Sim;

/// <summary>examples/mlp_digits compiled once; each simulator builds one untouched copy once and the cases that only
/// change tb/expected.hex run in it (restoring the file after), so Verilator builds four times in all.</summary>
public sealed class TamperFixture : IDisposable
{
    readonly TempDir dir = new();
    readonly Dictionary<string, string> built = [];

    public string Base { get; }
    public int Elements { get; }

    public TamperFixture()
    {
        Base = dir.File("base");
        var model = Repo.Example("mlp_digits");
        var c = Flow.Compile(model, HwConfig.Default);
        Flow.WriteDesignDirectory(c, Base, Flow.DefaultInputs(c.Graph), model);
        Elements = Testbench.ElementCount(c.Design);
    }

    /// <summary>A fresh copy of the compiled design (its simulators build from scratch).</summary>
    public string Copy(string name)
    {
        var to = dir.File(name);
        CopyTree(Base, to);
        return to;
    }

    /// <summary>The copy this simulator has built once; callers put back what they change.</summary>
    public string Built(string simulator)
    {
        if (!built.TryGetValue(simulator, out var d)) built[simulator] = d = Copy("built-" + simulator);
        return d;
    }

    static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyTree(d, Path.Combine(to, Path.GetFileName(d)));
    }

    public void Dispose() => dir.Dispose();
}

/// <summary>
/// `hwgen simulate` says PASS only when every output element was compared with a complete expectation: a deleted,
/// emptied, cut, shortened or doubled expected.hex, a memory.bin of another size than the image, an inputs.hex short of an
/// element, an edited count in the testbench or an edited RTL module all end in
/// FAIL and exit 1, in both simulators (before the count line, Icarus passed the first three: X matched X). A design
/// that makes no progress is stopped by the watchdog with a message naming the cycle.
/// </summary>
public sealed class TamperTests(TamperFixture fx) : IClassFixture<TamperFixture>
{
    static string Expected(string dir) => Path.Combine(dir, "tb", "expected.hex");
    static string Image(string dir) => Path.Combine(dir, "tb", Testbench.ImageFile);
    static string Inputs(string dir) => Path.Combine(dir, "tb", "inputs.hex");

    static readonly Dictionary<string, Action<string>> VectorTampers = new()
    {
        ["deleted"] = d => File.Delete(Expected(d)),
        ["emptied"] = d => File.WriteAllText(Expected(d), ""),
        ["cut in half"] = d => { var l = File.ReadAllLines(Expected(d)); File.WriteAllLines(Expected(d), l[..(l.Length / 2)]); },
        ["one element dropped"] = d => File.WriteAllLines(Expected(d), File.ReadAllLines(Expected(d)).Where((_, i) => i != 3)),
        ["doubled"] = d => File.AppendAllText(Expected(d), File.ReadAllText(Expected(d))),
        ["image one word short"] = d => { var b = File.ReadAllBytes(Image(d)); File.WriteAllBytes(Image(d), b[..^8]); },
        ["image one byte long"] = d => File.AppendAllText(Image(d), "\0"),
        ["input element dropped"] = d => File.WriteAllLines(Inputs(d), File.ReadAllLines(Inputs(d)).Where((_, i) => i != 3)),
    };

    /// <summary>Replaces the one occurrence of <paramref name="old"/> in a file of the design.</summary>
    static void Edit(string dir, string file, string old, string replacement)
    {
        var path = Path.Combine(dir, file);
        var text = File.ReadAllText(path);
        Assert.True(text.Split(old).Length == 2, $"'{old}' must occur once in {file}");
        File.WriteAllText(path, text.Replace(old, replacement));
    }

    Dictionary<string, Action<string>> SourceTampers() => new()
    {
        ["count edited"] = d => Edit(d, "tb/tb_hwgen.v", $"N_EXPECTED = {fx.Elements};", $"N_EXPECTED = {fx.Elements / 2};"),
        // Rounding adds 3/2 instead of 1/2 before the shift: every unsaturated output is one too high.
        ["constant flipped in the dense engine"] = d => Edit(d, "rtl/hwgen_dense_engine.v", "(64'sd1 <<< (prod_shift", "(64'sd3 <<< (prod_shift"),
    };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var sim in new[] { "verilator", "icarus" })
            foreach (var t in new[] { "untouched", "deleted", "emptied", "cut in half", "one element dropped", "doubled", "image one word short", "image one byte long",
                         "input element dropped", "count edited", "constant flipped in the dense engine" })
                data.Add(t, sim);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Simulate_passes_only_the_untouched_design(string tamper, string simulator)
    {
        string dir;
        if (tamper == "untouched" || VectorTampers.ContainsKey(tamper))
        {
            dir = fx.Built(simulator);
            if (tamper != "untouched") VectorTampers[tamper](dir);
        }
        else
        {
            dir = fx.Copy($"{simulator}-{tamper.Replace(' ', '-')}");
            SourceTampers()[tamper](dir);
        }
        try
        {
            var (exit, stdout, err) = CliRunner.Run("simulate", dir, "--simulator", simulator);
            if (tamper == "untouched")
            {
                Assert.True(exit == 0, stdout + err);
                Assert.Contains($"PASS  HWGEN_RESULT PASS {fx.Elements} elements bit-exact", stdout);
            }
            else
            {
                Assert.True(exit == 1, $"{tamper}: exit {exit}\n{stdout}{err}");
                Assert.StartsWith($"{simulator}: FAIL", stdout);
            }
        }
        finally
        {
            foreach (var file in new Func<string, string>[] { Expected, Image, Inputs }) File.Copy(file(fx.Base), file(dir), overwrite: true);
        }
    }

    /// <summary>A testbench edited consistently (count, end line and vectors for 5 of the 10 elements) says PASS; the
    /// driver still fails it, because the manifest counts 10 output elements.</summary>
    [Fact]
    public void A_testbench_that_compares_fewer_elements_than_the_manifest_counts_fails()
    {
        var dir = fx.Copy("icarus-consistent-fake");
        int half = fx.Elements / 2;
        Edit(dir, "tb/tb_hwgen.v", $"N_EXPECTED = {fx.Elements};", $"N_EXPECTED = {half};");
        Edit(dir, "tb/tb_hwgen.v", $"48'h{Testbench.EndLine(fx.Elements)}", $"48'h{Testbench.EndLine(half)}");
        File.WriteAllLines(Expected(dir), [.. File.ReadAllLines(Expected(dir)).Take(half), Testbench.EndLine(half)]);
        Assert.True(Simulation.Run(new Icarus(), dir, half).Passed);   // the testbench itself is satisfied

        var (exit, stdout, _) = CliRunner.Run("simulate", dir, "--simulator", "icarus");
        Assert.Equal(1, exit);
        Assert.Contains($"HWGEN_RESULT PASS {half} elements bit-exact, but the design has {fx.Elements} output elements: not every one was compared", stdout);
    }

    [Theory]
    [InlineData("verilator")]
    [InlineData("icarus")]
    public void The_watchdog_stops_a_design_that_makes_no_progress(string simulator)
    {
        var dir = fx.Copy($"{simulator}-frozen-memory");
        Edit(dir, "tb/tb_hwgen.v", "wire mem_req_ready = nostall | lfsr[0] | lfsr[1];", "wire mem_req_ready = 1'b0;");
        var (exit, stdout, _) = CliRunner.Run("simulate", dir, "--simulator", simulator);
        Assert.Equal(1, exit);
        long bound = Testbench.WatchdogCycles(Flow.Compile(Repo.Example("mlp_digits"), HwConfig.Default).Design.EstimatedCycles);
        Assert.Contains($"FAIL  HWGEN_RESULT FAIL watchdog: no progress, done has not risen by cycle {bound} (bound {bound}: ", stdout);
        Assert.Contains("no memory transfer at all", stdout);
    }

    [Fact]
    public void The_watchdog_bound_is_four_times_the_estimate_plus_a_margin()
    {
        Assert.Equal(10_000, Testbench.WatchdogCycles(1775));
        Assert.Equal(4 * 50_000 + 1000, Testbench.WatchdogCycles(50_000));
    }

    [Theory]
    [InlineData("HWGEN_RESULT PASS 10 elements bit-exact\n", 0, 10, true)]
    [InlineData("HWGEN_RESULT PASS 9 elements bit-exact\n", 0, 10, false)]
    [InlineData("HWGEN_RESULT PASS 10 elements bit-exact\n", 1, 10, false)]
    [InlineData("HWGEN_RESULT PASS 10 elements bit-exact\nHWGEN_RESULT PASS 10 elements bit-exact\n", 0, 10, false)]
    [InlineData("HWGEN_RESULT FAIL 1 of 10 elements differ\nHWGEN_RESULT PASS 10 elements bit-exact\n", 0, 10, false)]
    [InlineData("", 0, 10, false)]
    public void The_driver_passes_one_PASS_line_with_the_manifests_count_and_exit_0(string log, int exit, int elements, bool passed) =>
        Assert.Equal(passed, Simulation.Parse("icarus", log, exit, TimeSpan.Zero, elements).Passed);

    [Fact]
    public void An_unknown_output_bit_is_a_mismatch()
    {
        var r = Simulation.Parse("icarus", "HWGEN_MISMATCH 3 expected -5 got x\nHWGEN_RESULT FAIL 1 of 10 elements differ\n", 1, TimeSpan.Zero, 10);
        Assert.False(r.Passed);
        Assert.Equal(new Mismatch(3, -5, null), Assert.Single(r.FirstMismatches));
    }
}
