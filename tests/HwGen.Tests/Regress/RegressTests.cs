using System.Text.Json.Nodes;
using System.Xml;
using System.Xml.Linq;
using System.Xml.Schema;
using HwGen.Cli;
using HwGen.Cli.Regress;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Regress;

/// <summary>hwgen regress on tiny suites: verdicts, figures against a baseline, shards and merge, JUnit XML, a broken case among good ones.</summary>
public sealed class RegressTests
{
    [Fact]
    public void A_suite_of_two_tiny_cases_passes_with_figures_from_the_designs_and_the_same_figures_twice()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        var (exit, stdout, figures) = TinySuite.Run(dir.File("out"), "regress", suite, "--junit", dir.File("j.xml"));
        Assert.True(exit == 0, stdout);
        Assert.Equal(["a/default", "b/default"], TinySuite.Ids(figures));
        foreach (var id in new[] { "a/default", "b/default" })
        {
            var c = TinySuite.CaseOf(figures, id);
            Assert.True(c["passed"]!.GetValue<bool>());
            var sim = c["simulators"]!.AsArray().Single()!;
            Assert.Equal("icarus", sim["name"]!.GetValue<string>());
            Assert.True(sim["passed"]!.GetValue<bool>());
            // The figures are the design's own: the simulated cycles and the manifest's off-chip bytes.
            Assert.Equal(sim["cycles"]!.GetValue<long>(), c["figures"]!["cycles"]!.GetValue<long>());
            var manifest = JsonNode.Parse(File.ReadAllText(dir.File($"out/designs/{id}/manifest.json")))!;
            Assert.Equal(manifest["offChipBytesMoved"]!.GetValue<long>(), c["figures"]!["offChipBytes"]!.GetValue<long>());
            Assert.True(c["figures"]!["cycles"]!.GetValue<long>() >= manifest["estimatedCycles"]!.GetValue<long>());
            Assert.Contains($"PASS {id}: cycles {c["figures"]!["cycles"]!.GetValue<long>():N0} (new)", stdout);
        }
        var summary = File.ReadAllText(dir.File("out/summary.md"));
        Assert.Contains("2 passed, 0 failed", summary);
        Assert.Contains("| a | default | pass |", summary);
        Assert.Equal(File.ReadAllText(dir.File("out/junit.xml")), File.ReadAllText(dir.File("j.xml")));
        Assert.False(Directory.Exists(dir.File("out/designs/a/default/build")), "the simulators' builds are removed");

        // A second run replaces the results directory and gives the same figures; only wallSeconds differs.
        var (_, _, again) = TinySuite.Run(dir.File("out"), "regress", suite);
        figures.Remove("wallSeconds");
        again.Remove("wallSeconds");
        Assert.Equal(figures.ToJsonString(), again.ToJsonString());
    }

    [Fact]
    public void A_baseline_with_cycles_10_percent_lower_fails_naming_the_figure_and_a_tolerance_of_20_percent_lets_it_pass()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        var (exit, stdout, _) = TinySuite.Run(dir.File("out"), "regress", suite, "--baseline", dir.File("base.json"), "--update-baseline");
        Assert.True(exit == 0, stdout);
        Assert.Contains("updated", stdout);
        var untouched = TinySuite.Run(dir.File("out"), "regress", suite, "--baseline", dir.File("base.json"));
        Assert.True(untouched.Exit == 0, untouched.Out);

        var baseline = JsonNode.Parse(File.ReadAllText(dir.File("base.json")))!.AsObject();
        Assert.Null(baseline["wallSeconds"]);
        var figs = TinySuite.CaseOf(baseline, "a/default")["figures"]!.AsObject();
        long cycles = figs["cycles"]!.GetValue<long>();
        figs["cycles"] = Math.Round(cycles * 0.9);
        File.WriteAllText(dir.File("base.json"), baseline.ToJsonString());

        var (failed, output, figures) = TinySuite.Run(dir.File("out"), "regress", suite, "--baseline", dir.File("base.json"));
        Assert.Equal(1, failed);
        Assert.Contains("a/default: tolerance: cycles", output);
        var a = TinySuite.CaseOf(figures, "a/default");
        Assert.False(a["passed"]!.GetValue<bool>());
        var failure = a["failures"]!.AsArray().Single()!;
        Assert.Equal("tolerance", failure["kind"]!.GetValue<string>());
        Assert.StartsWith("cycles", failure["message"]!.GetValue<string>());
        Assert.Contains("+11.", failure["message"]!.GetValue<string>());
        Assert.True(TinySuite.CaseOf(figures, "b/default")["passed"]!.GetValue<bool>());
        Assert.Contains("| a | default | **FAIL** |", File.ReadAllText(dir.File("out/summary.md")));

        // The same baseline within a suite-wide tolerance of 20 %.
        var root = JsonNode.Parse(File.ReadAllText(suite))!.AsObject();
        root["tolerances"] = new JsonObject { ["cycles"] = 0.2 };
        File.WriteAllText(suite, root.ToJsonString());
        var tolerant = TinySuite.Run(dir.File("out"), "regress", suite, "--baseline", dir.File("base.json"));
        Assert.True(tolerant.Exit == 0, tolerant.Out);
        Assert.Contains("(+11.", File.ReadAllText(dir.File("out/summary.md")));
    }

    /// <summary>An .npy input sets the batch and the vectors; the accuracy figure is the share of labels the golden model's argmax hits,
    /// here labels right on the even rows and wrong on the odd ones.</summary>
    [Fact]
    public void Npy_inputs_and_accuracy_on_a_labelled_test_set()
    {
        using var dir = new TempDir();
        var c = TinySuite.Case(dir, "a", 1);
        var x = QdqModels.Input(5, 3, 7);
        Npy.Write(dir.File("x.npy"), x);
        c["inputs"] = new JsonObject { ["npy"] = "x.npy" };
        var testX = QdqModels.Input(6, 9, 7);
        var compiled = Flow.Compile(dir.File("a.onnx"), HwConfig.FromJson(TinySuite.SmallConfig(), "small"), batch: 9);
        var y = HardwareModel.Outputs(compiled.Graph, Flow.CheckInputs(compiled.Graph, [testX], "test"))[0];
        var labels = Enumerable.Range(0, 9).Select(i =>
        {
            var row = y.Data.Skip(i * 3).Take(3).ToArray();
            int best = Array.IndexOf(row, row.Max());
            return (double)(i % 2 == 0 ? best : (best + 1) % 3);
        }).ToArray();
        Npy.Write(dir.File("tx.npy"), testX);
        Npy.Write(dir.File("ty.npy"), new Tensor(DType.Int64, [9], labels));
        c["accuracy"] = new JsonObject { ["x"] = "tx.npy", ["labels"] = "ty.npy" };
        var (exit, stdout, figures) = TinySuite.Run(dir.File("out"), "regress", TinySuite.Write(dir, [c]));
        Assert.True(exit == 0, stdout);
        Assert.Equal(5 / 9.0, TinySuite.CaseOf(figures, "a/default")["figures"]!["accuracy"]!.GetValue<double>(), 12);
        Assert.Equal(x.Data, Npy.Read(dir.File("out/designs/a/default/tb/input_0.npy")).Data);
        Assert.Contains("55.56%", File.ReadAllText(dir.File("out/summary.md")));
    }

    [Fact]
    public void Shards_updating_one_baseline_replace_only_their_own_cases()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        var baseline = dir.File("base.json");
        Assert.Equal(0, TinySuite.Run(dir.File("s2"), "regress", suite, "--shard", "2/2", "--baseline", baseline, "--update-baseline").Exit);
        Assert.Equal(["b/default"], TinySuite.Ids(JsonNode.Parse(File.ReadAllText(baseline))!.AsObject()));
        Assert.Equal(0, TinySuite.Run(dir.File("s1"), "regress", suite, "--shard", "1/2", "--baseline", baseline, "--update-baseline").Exit);
        var both = JsonNode.Parse(File.ReadAllText(baseline))!.AsObject();
        Assert.Equal(["a/default", "b/default"], TinySuite.Ids(both));
        var (exit, _, figures) = TinySuite.Run(dir.File("all"), "regress", suite, "--baseline", baseline);
        Assert.Equal(0, exit);
        foreach (var id in new[] { "a/default", "b/default" })
            Assert.Equal(TinySuite.CaseOf(both, id)["figures"]!.ToJsonString(), TinySuite.CaseOf(figures, id)["baseline"]!.ToJsonString());
    }

    /// <summary>Shards of any count take every job exactly once, in the suite's order.</summary>
    [Fact]
    public void Shards_take_every_job_exactly_once()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(1, 2, [6, 3], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        var cases = Enumerable.Range(0, 7).Select(i => new JsonObject
        {
            ["name"] = $"c{i}", ["model"] = "m.onnx",
            ["configs"] = new JsonObject(Enumerable.Range(0, 1 + i % 3).Select(k => KeyValuePair.Create($"k{k}", (JsonNode?)new JsonObject()))),
        });
        var suite = SuiteReader.Load(TinySuite.Write(dir, cases));
        var ids = suite.Jobs.Select(j => j.Id).ToList();
        Assert.Equal(Enumerable.Range(0, 7).Sum(i => 1 + i % 3), ids.Count);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        for (int n = 1; n <= ids.Count + 2; n++)
        {
            var taken = Enumerable.Range(1, n).SelectMany(i => ids.Where((_, k) => new Shard(i, n).Takes(k))).ToList();
            Assert.Equal(ids.Order(), taken.Order());
            var sizes = Enumerable.Range(1, n).Select(i => ids.Where((_, k) => new Shard(i, n).Takes(k)).Count()).ToList();
            Assert.True(sizes.Max() - sizes.Min() <= 1, $"{n} shards of sizes {string.Join(", ", sizes)}");
        }
    }

    [Fact]
    public void Three_cases_in_two_shards_merge_into_every_case_once()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Write(dir, [TinySuite.Case(dir, "a", 1), TinySuite.Case(dir, "b", 2), TinySuite.Case(dir, "c", 3)]);
        var one = TinySuite.Run(dir.File("s1"), "regress", suite, "--shard", "1/2");
        var two = TinySuite.Run(dir.File("s2"), "regress", suite, "--shard", "2/2");
        Assert.Equal(0, one.Exit + two.Exit);
        var shardIds = TinySuite.Ids(one.Figures).Concat(TinySuite.Ids(two.Figures)).ToList();
        Assert.Equal(["a/default", "b/default", "c/default"], shardIds.Order());
        Assert.Contains("shard 1/2 (2 of the suite's 3 cases)", File.ReadAllText(dir.File("s1/summary.md")));

        var merged = TinySuite.Run(dir.File("m"), "regress", "merge", dir.File("s2/figures.json"), dir.File("s1/figures.json"));
        Assert.Equal(0, merged.Exit);
        Assert.Equal(["a/default", "b/default", "c/default"], TinySuite.Ids(merged.Figures));
        Assert.Null(merged.Figures["shard"]);
        Assert.Contains("3 cases: 3 passed, 0 failed", File.ReadAllText(dir.File("m/summary.md")));
        // The merged cases are the shards' own.
        Assert.Equal(TinySuite.CaseOf(two.Figures, "b/default").ToJsonString(), TinySuite.CaseOf(merged.Figures, "b/default").ToJsonString());
    }

    [Fact]
    public void A_broken_case_fails_while_the_others_run_and_the_JUnit_XML_follows_the_schema()
    {
        using var dir = new TempDir();
        BadInputTests.Model(dir, (b, o) => b.Node("Cos", [o], "my_cos"));
        var broken = new JsonObject { ["name"] = "broken", ["model"] = "model.onnx", ["simulators"] = new JsonArray("icarus") };
        var suite = TinySuite.Write(dir, [TinySuite.Case(dir, "a", 1), broken, TinySuite.Case(dir, "b", 2)]);
        var (exit, stdout, figures) = TinySuite.Run(dir.File("out"), "regress", suite, "--junit", dir.File("j.xml"));
        Assert.Equal(1, exit);
        Assert.Contains("broken/default: error:", stdout);
        var bad = TinySuite.CaseOf(figures, "broken/default");
        Assert.False(bad["passed"]!.GetValue<bool>());
        Assert.Contains("unsupported op Cos", bad["failures"]![0]!["message"]!.GetValue<string>());
        foreach (var id in new[] { "a/default", "b/default" })
            Assert.True(TinySuite.CaseOf(figures, id)["passed"]!.GetValue<bool>(), id);

        var doc = XDocument.Load(dir.File("j.xml"));
        var schemas = new XmlSchemaSet();
        schemas.Add(null, XmlReader.Create(new StringReader(JUnitSchema)));
        doc.Validate(schemas, (_, e) => Assert.Fail($"JUnit XML does not follow the schema: {e.Message}"));
        var suites = doc.Root!;
        Assert.Equal("testsuites", suites.Name.LocalName);
        var ts = suites.Elements("testsuite").Single();
        var cases = ts.Elements("testcase").ToList();
        foreach (var e in new[] { suites, ts })
        {
            Assert.Equal(cases.Count, (int)e.Attribute("tests")!);
            Assert.Equal(cases.Count(c => c.Element("failure") is not null), (int)e.Attribute("failures")!);
            Assert.Equal(cases.Count(c => c.Element("error") is not null), (int)e.Attribute("errors")!);
        }
        Assert.Equal(3, cases.Count);
        var error = cases.Single(c => (string)c.Attribute("classname")! == "tiny.broken").Element("error")!;
        Assert.Contains("unsupported op Cos", (string)error.Attribute("message")!);
        Assert.Equal(2, cases.Count(c => !c.HasElements));
    }

    /// <summary>README's "Regression suites" section documents every key the suite reader takes and every figure.</summary>
    [Fact]
    public void Readme_documents_every_suite_key_and_figure()
    {
        var lines = File.ReadAllLines(Path.Combine(Repo.Root, "README.md"));
        var section = string.Join("\n", lines.SkipWhile(l => l != "## Regression suites").Skip(1).TakeWhile(l => !l.StartsWith("## ")));
        Assert.NotEmpty(section);
        foreach (var key in SuiteReader.SuiteKeys.Select(k => $"| `{k}` |")
                     .Concat(SuiteReader.CaseKeys.Select(k => $"| `cases[].{k}` |"))
                     .Concat(SuiteReader.InputKeys.Concat(SuiteReader.AccuracyKeys).Select(k => $"\"{k}\""))
                     .Concat(Figures.All.Select(f => $"`{f.Key}`")))
            Assert.Contains(key, section);
    }

    [Fact]
    public void Yosys_stat_sums_luts_flip_flops_and_dsps()
    {
        var stat = "=== hwgen_top ===\n   Number of cells:   40\n     CARRY4   3\n     DSP48E1   2\n     FDRE   10\n     FDSE   1\n     FDCE   4\n" +
                   "     LUT1   5\n     LUT2   6\n     LUT6   7\n     MUXF7   9\n";
        var r = Yosys.Parse(stat);
        Assert.Equal(18, r["luts"]);
        Assert.Equal(15, r["ffs"]);
        Assert.Equal(2, r["dsps"]);
    }

    /// <summary>The JUnit XML structure CI servers read (after the common Jenkins/Ant schema): testsuites of testsuite of testcase,
    /// each testcase with at most one failure, error or skipped, counts and names required.</summary>
    const string JUnitSchema = """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
          <xs:complexType name="problem">
            <xs:simpleContent>
              <xs:extension base="xs:string">
                <xs:attribute name="message" type="xs:string"/>
                <xs:attribute name="type" type="xs:string"/>
              </xs:extension>
            </xs:simpleContent>
          </xs:complexType>
          <xs:attributeGroup name="counts">
            <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="time" type="xs:decimal"/>
          </xs:attributeGroup>
          <xs:element name="testsuites">
            <xs:complexType>
              <xs:sequence>
                <xs:element name="testsuite" maxOccurs="unbounded">
                  <xs:complexType>
                    <xs:sequence>
                      <xs:element name="testcase" minOccurs="0" maxOccurs="unbounded">
                        <xs:complexType>
                          <xs:choice minOccurs="0">
                            <xs:element name="failure" type="problem"/>
                            <xs:element name="error" type="problem"/>
                            <xs:element name="skipped" type="problem"/>
                          </xs:choice>
                          <xs:attribute name="name" type="xs:string" use="required"/>
                          <xs:attribute name="classname" type="xs:string" use="required"/>
                          <xs:attribute name="time" type="xs:decimal"/>
                        </xs:complexType>
                      </xs:element>
                    </xs:sequence>
                    <xs:attribute name="name" type="xs:string" use="required"/>
                    <xs:attributeGroup ref="counts"/>
                    <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
                  </xs:complexType>
                </xs:element>
              </xs:sequence>
              <xs:attribute name="name" type="xs:string"/>
              <xs:attributeGroup ref="counts"/>
            </xs:complexType>
          </xs:element>
        </xs:schema>
        """;
}
