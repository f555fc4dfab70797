using HwGen.Tests.Support;

namespace HwGen.Tests.Fuzz;

// Four classes, so xunit runs the families side by side. Each case: one seed of one family, see Fuzz.

/// <summary>Byte-level mutations of the example models: a valid result compiles, anything else is one clean error.</summary>
public sealed class FuzzBytesTests
{
    public const int Seeds = 1000;

    public static TheoryData<string, int> Cases()
    {
        var d = new TheoryData<string, int>();
        foreach (var s in new[] { "mlp_digits", "ffn_digits" })
            for (int seed = 0; seed < Seeds; seed++) d.Add(s, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Byte_mutation(string source, int seed) => Fuzz.RunBytes(source, seed);
}

/// <summary>Structural mutations with the protobuf classes: most make an invalid model, which must be one clean error naming
/// the file and what the mutation changed (the node, or the tensor or graph value; <see cref="Fuzz.Target"/>); the rest
/// (<see cref="Fuzz.MayPassMutations"/>) may also compile.</summary>
public sealed class FuzzStructureTests
{
    public const int Seeds = 150;

    public static TheoryData<string, string, int> Cases()
    {
        var d = new TheoryData<string, string, int>();
        foreach (var m in Fuzz.All)
            foreach (var s in Fuzz.Sources)
                for (int seed = 0; seed < Seeds; seed++) d.Add(m.Name, s, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Structural_mutation(string mutation, string source, int seed) => Fuzz.RunStructure(mutation, source, seed);

    [Fact]
    public void Every_mutation_applies_to_some_source()
    {
        using var dir = new TempDir();
        foreach (var m in Fuzz.All)
            Assert.True(Fuzz.Sources.Any(s => Fuzz.MutateStructure(Fuzz.SourceBytes(s, dir), m, new Random(0)) is not null), m.Name);
    }
}

/// <summary>The same two families on a transformer torch exported (examples/torch_encoder_digits at opset 17: shape arithmetic,
/// packed in_proj, class token, attention), fewer seeds: its compiles are slower.</summary>
public sealed class FuzzTransformerTests
{
    public const int ByteSeeds = 80, StructureSeeds = 12;

    public static TheoryData<int> ByteCases() => new(Enumerable.Range(0, ByteSeeds));

    public static TheoryData<string, int> StructureCases()
    {
        var d = new TheoryData<string, int>();
        // Not graph-input-size: a batch of up to 128 sequences is a valid transformer whose compile takes half a minute (the
        // small sources cover the mutation).
        foreach (var m in Fuzz.All.Where(m => m.Name != "graph-input-size"))
            for (int seed = 0; seed < StructureSeeds; seed++) d.Add(m.Name, seed);
        return d;
    }

    [Theory]
    [MemberData(nameof(ByteCases))]
    public void Byte_mutation(int seed) => Fuzz.RunBytes(Fuzz.Transformer, seed);

    [Theory]
    [MemberData(nameof(StructureCases))]
    public void Structural_mutation(string mutation, int seed) => Fuzz.RunStructure(mutation, Fuzz.Transformer, seed);
}

/// <summary>Configs with edge values, wrong types, unknown fields and broken JSON: a compile or one clean error naming a file.</summary>
public sealed class FuzzConfigTests
{
    public const int Seeds = 1000;

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Seeds));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Config_mutation(int seed) => Fuzz.RunConfig(seed);
}

/// <summary>Damaged .npy inputs: the right input compiles, anything else is one clean error naming the file.</summary>
public sealed class FuzzNpyTests
{
    public const int Seeds = 1000;

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Seeds));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Npy_mutation(int seed) => Fuzz.RunNpy(seed);
}

/// <summary>Cases the fuzzer once found crashing (exit 3) or hanging, kept by name after the fix; the seeds replay the same input.</summary>
public sealed class FuzzRegressionTests
{
    [Theory]
    [InlineData("attribute-value", "ffn_digits", 2)]  // Gemm alpha NaN: internal error in LegalizeRequant (multiplier NaN)
    [InlineData("attribute-value", "ffn_digits", 5)]  // Gemm alpha -1: internal error in LegalizeRequant (negative multiplier)
    [InlineData("bytes", "ffn_digits", 131)]  // a newline in a name read from the file: a two-line error
    [InlineData("rewire-input", "mlp_digits", 20)]  // a zero point of another shape than its scale: IndexOutOfRange in DequantizeLinear
    [InlineData("bytes", "ffn_digits", 536)]  // a LayerNorm bias beyond long: Overflow in the unit's range check
    [InlineData("rewire-input", "ffn_digits", 75)]  // Softmax of a scalar: axis -1 of rank 0, IndexOutOfRange
    [InlineData("rewire-input", "one_layer", 5032)]  // run --semantics onnx: MatMul of a scalar, IndexOutOfRange
    [InlineData("rewire-input", "tiny_vit_lambda", 129)]  // run --semantics onnx: a LayerNorm bias of shape [32, 64], IndexOutOfRange
    [InlineData("rewire-input", "tiny_vit_lambda", 156)]  // a Transpose's perm of rank 4 on a constant of rank 2: ArgumentException
    [InlineData("rewire-input", "tiny_vit_lambda", 158)]  // the same on a scalar constant
    public void Regression(string family, string source, int seed)
    {
        switch (family)
        {
            case "bytes": Fuzz.RunBytes(source, seed); break;
            case "config": Fuzz.RunConfig(seed); break;
            case "npy": Fuzz.RunNpy(seed); break;
            default: Fuzz.RunStructure(family, source, seed); break;
        }
    }
}
