using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HwGen.Core;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Core;

/// <summary>The config's one field table (<see cref="HwConfig.Fields"/>): JSON, manifest and README all follow it.</summary>
public sealed partial class HwConfigTests
{
    public static TheoryData<string> FieldNames => [.. HwConfig.Fields.Select(f => f.Name)];

    static ConfigField Field(string name) => HwConfig.Fields.Single(f => f.Name == name);

    /// <summary>A valid value other than the default, guessed from the default (numbers) or the rule's quoted words (strings).</summary>
    static object NonDefault(ConfigField f)
    {
        IEnumerable<object> candidates = f.Default switch
        {
            int i => [i * 2, i / 2, i + 1, i - 1],
            double d => [d * 2, d / 2],
            _ => QuotedWord().Matches(f.Rule).Select(m => (object)m.Groups[1].Value),
        };
        foreach (var v in candidates.Where(v => !v.Equals(f.Default)))
        {
            try { f.Set(HwConfig.Default, v).Validate(); return v; }
            catch (HwGenException) { }
        }
        throw new InvalidOperationException($"no valid non-default value guessed for '{f.Name}': add a candidate to this test");
    }

    [GeneratedRegex("\"([^\"]+)\"")]
    private static partial Regex QuotedWord();

    [Theory]
    [MemberData(nameof(FieldNames))]
    public void Every_field_survives_a_round_trip_through_json(string name)
    {
        var f = Field(name);
        var value = NonDefault(f);
        var c = f.Set(HwConfig.Default, value);
        var json = c.ToJson();
        Assert.Equal(HwConfig.Fields.Select(x => x.Name), json.Select(kv => kv.Key));
        var back = HwConfig.FromJson(JsonNode.Parse(json.ToJsonString()), "test", complete: true);
        Assert.Equal(c, back);
        Assert.Equal(value, f.Get(back));
        Assert.NotEqual(HwConfig.Default, back);
    }

    [Fact]
    public void A_complete_config_must_hold_every_field()
    {
        var json = HwConfig.Default.ToJson();
        json.Remove("lutEntries");
        var e = Assert.Throws<HwGenException>(() => HwConfig.FromJson(json, "m.json", complete: true));
        Assert.Equal("m.json: config has no 'lutEntries'", e.Message);
        Assert.Equal(HwConfig.Default, HwConfig.FromJson(json, "hw.json"));
    }

    [Theory]
    [InlineData("""{ "arrayRows": 2.5 }""", "config field 'arrayRows' must be an integer")]
    [InlineData("""{ "clockMHz": "fast" }""", "config field 'clockMHz' must be a number")]
    [InlineData("""{ "clockMHz": 0 }""", "clockMHz must be in (0, 5000], got 0")]
    [InlineData("""{ "scheduler": "fast" }""", "scheduler must be \"ilp\" or \"greedy\", got \"fast\"")]
    [InlineData("""{ "arrayCols": 64, "scratchpadBytes": 256 }""", "scratchpadBytes must give each of the 4 banks at least 4 lines of 256 bytes (arrayRows x arrayCols): at least 4096, got 256")]
    [InlineData("""{ "arrayRows": 3, "arrayCols": 4 }""", "arrayCols (4) must be a multiple of arrayRows (3): an output tile of arrayCols features fills whole activation lines of arrayRows features")]
    public void Bad_values_name_the_source_and_the_field(string json, string reason)
    {
        using var doc = JsonDocument.Parse(json);
        var e = Assert.Throws<HwGenException>(() => HwConfig.FromJson(doc.RootElement, "hw.json"));
        Assert.Equal("hw.json: " + reason, e.Message);
    }

    /// <summary>The rows of README.md's "Hardware configuration" table: name, default, meaning.</summary>
    static List<(string Name, string Default, string Doc)> ReadmeRows()
    {
        var lines = File.ReadAllLines(Path.Combine(Repo.Root, "README.md"));
        return [.. lines.SkipWhile(l => l.Trim() != "## Hardware configuration").Skip(1).TakeWhile(l => !l.StartsWith("## "))
            .Where(l => l.StartsWith("| `"))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)[1..^1])
            .Select(cells => (cells[0].Trim('`'), cells[1], string.Join("|", cells[2..])))];
    }

    static string ReadmeDefault(ConfigField f) =>
        f.Kind == ConfigKind.String ? $"`{ConfigField.Format(f.Default)}`" : ConfigField.Format(f.Default);

    [Fact]
    public void The_readme_table_lists_exactly_the_fields_with_their_defaults_and_texts()
    {
        var expected = HwConfig.Fields.Select(f => (f.Name, ReadmeDefault(f), f.Doc)).ToList();
        var table = string.Join("\n", expected.Select(r => $"| `{r.Name}` | {r.Item2} | {r.Doc} |"));
        var actual = ReadmeRows();
        Assert.True(actual.Count > 0, "no config table under '## Hardware configuration' in README.md");
        Assert.True(expected.SequenceEqual(actual), $"README.md's config table must be, from HwConfig.Fields:\n{table}");
    }

    [Fact]
    public void A_design_compiled_with_8_lut_entries_simulates_with_8()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("lut8.json"), """{ "lutEntries": 8 }""");
        var outDir = dir.File("out");
        var (exit, _, err) = CliRunner.Run("compile", Repo.Example("ffn_digits"), "-o", outDir, "--config", dir.File("lut8.json"));
        Assert.True(exit == 0, err);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!["config"]!.AsObject();
        Assert.Equal(HwConfig.Fields.Select(f => f.Name), config.Select(kv => kv.Key));
        Assert.Equal(8, config["lutEntries"]!.GetValue<int>());
        Assert.Equal(HwConfig.Default with { LutEntries = 8 }, HwGen.Cli.Manifest.Read(outDir).Config);

        string stdout;
        (exit, stdout, err) = CliRunner.Run("simulate", outDir, "--simulator", "verilator", "--input", Path.Combine(outDir, "tb", "input_0.npy"));
        Assert.True(exit == 0, stdout + err);
        Assert.Contains("PASS", stdout);
    }
}
