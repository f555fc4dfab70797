namespace HwGen.Rtl.Engines.BitMod;

/// <summary>One signed power-of-two term of a weight value: Sign · 2^Shift (Sign is +1 or -1).</summary>
public readonly record struct PowerTerm(int Sign, int Shift)
{
    public int Value => Sign << Shift;
}

/// <summary>
/// A low-bit weight datatype of the BitMoD engine as an integer-scaled value set: <see cref="Values"/>[code] is the integer a code
/// of <see cref="Bits"/> bits stands for (the group's integer scale and the channel's real scale multiply it).
/// <list type="bullet">
/// <item>INT3 and INT4 (<see cref="Int"/>): two's complement codes, -2^(b-1) .. 2^(b-1) - 1, what QONNX's signed Quant gives;</item>
/// <item>FP3 (bits 2..0: sign, 2-bit magnitude index into {0, 1, 2, 4}) and FP4 (sign, 3-bit index into {0, 1, 2, 3, 4, 6, 8, 12}):
/// the redundant "-0" code (sign set, index 0) holds the special value, extra resolution (ER: 3 for FP3, 10 for FP4) or extra
/// asymmetry (EA: 6, 16), positive (ER+, EA+) or negative (ER-, EA-).</item>
/// </list>
/// A group's datatype is its <see cref="Id"/> (3 bits in the group's header) within the layer's bits: 0 INT, 1 ER+, 2 ER-, 3 EA+, 4 EA-.
/// </summary>
public sealed record ModType(int Id, int Bits, string Name, IReadOnlyList<int> Values)
{
    public const int Int = 0, ErPlus = 1, ErMinus = 2, EaPlus = 3, EaMinus = 4;
    /// <summary>Bits of a datatype id in a group header.</summary>
    public const int IdBits = 3;

    /// <summary>The largest magnitude of the set, a group's scale is its largest |w| over it; for INT the symmetric range's,
    /// 2^(b-1) - 1 (-2^(b-1) is a code, as QONNX's non-narrow range has it, that rounding reaches only below it).</summary>
    public int MaxMagnitude => Id == Int ? (1 << (Bits - 1)) - 1 : Values.Max(Math.Abs);

    /// <summary>The code of <paramref name="value"/>; an exception when the set does not hold it.</summary>
    public int Encode(int value)
    {
        for (int code = 0; code < Values.Count; code++)
            if (Values[code] == value) return code;
        throw new ArgumentException($"{Name} has no value {value}");
    }

    /// <summary>Every datatype of <paramref name="bits"/> bits (3 or 4), by id.</summary>
    public static IReadOnlyList<ModType> All(int bits) => bits switch
    {
        3 => Fp3,
        4 => Fp4,
        _ => throw new ArgumentOutOfRangeException(nameof(bits), $"BitMoD datatypes have 3 or 4 bits, not {bits}"),
    };

    public static ModType Of(int bits, int id) => All(bits)[id];

    /// <summary>The candidates a group chooses from: for <c>mod</c> the four FP variants (ER±, EA±), for <c>int</c> INT alone.</summary>
    public static IReadOnlyList<ModType> Candidates(int bits, bool mod) => mod ? All(bits).Skip(1).ToArray() : [All(bits)[Int]];

    static readonly IReadOnlyList<ModType> Fp3 = Family(3, [0, 1, 2, 4], er: 3, ea: 6);
    static readonly IReadOnlyList<ModType> Fp4 = Family(4, [0, 1, 2, 3, 4, 6, 8, 12], er: 10, ea: 16);

    static IReadOnlyList<ModType> Family(int bits, int[] magnitudes, int er, int ea)
    {
        int half = 1 << (bits - 1);
        ModType Fp(int id, string name, int special) =>
            new(id, bits, name, Enumerable.Range(0, 2 * half).Select(code => code == half ? special : code < half ? magnitudes[code] : -magnitudes[code - half]).ToArray());
        return
        [
            new(Int, bits, $"int{bits}", Enumerable.Range(0, 2 * half).Select(code => code < half ? code : code - 2 * half).ToArray()),
            Fp(ErPlus, $"fp{bits}-er+", er), Fp(ErMinus, $"fp{bits}-er-", -er),
            Fp(EaPlus, $"fp{bits}-ea+", ea), Fp(EaMinus, $"fp{bits}-ea-", -ea),
        ];
    }

    /// <summary>
    /// The unified representation: <paramref name="value"/> as at most two signed power-of-two terms, the larger first (none for 0).
    /// Every value of every datatype has one: 2^a; 2^a + 2^b (3, 5, 6, 10, 12); or 2^(a+1) - 2^b (7 = 8 - 1).
    /// </summary>
    public static IReadOnlyList<PowerTerm> Terms(int value)
    {
        int sign = Math.Sign(value), v = Math.Abs(value);
        if (v == 0) return [];
        int a = 31 - int.LeadingZeroCount(v), rest = v - (1 << a);
        if (rest == 0) return [new(sign, a)];
        if ((rest & (rest - 1)) == 0) return [new(sign, a), new(sign, int.TrailingZeroCount(rest))];
        int below = (1 << (a + 1)) - v;
        if ((below & (below - 1)) == 0) return [new(sign, a + 1), new(-sign, int.TrailingZeroCount(below))];
        throw new ArgumentException($"{value} is not a sum of two signed powers of two");
    }

    /// <summary>Cycles the bit-serial engine spends on a weight of <paramref name="bits"/> bits: one term a cycle, ⌈bits / 2⌉.</summary>
    public static int CyclesPerWeight(int bits) => (bits + 1) / 2;
}
