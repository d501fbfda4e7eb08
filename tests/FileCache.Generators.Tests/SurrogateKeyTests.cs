namespace FileCache.Generators.Tests;

/// <summary>
/// Strings without a UTF-8 form (lone surrogates) used to be encoded with U+FFFD, so "\uD800",
/// "\uDC00" and "\uFFFD" gave one key. They are rejected now, naming the member.
/// </summary>
public sealed class SurrogateKeyTests
{
    [Fact]
    public void LoneSurrogate_InAGeneratedKeyMember_IsRejected_NamingTheMember()
    {
        // Not [InlineData]: xUnit's test-case serialization replaces lone surrogates with U+FFFD.
        foreach (string name in new[] { "\uD800", "\uDC00", "a\uD800b", "\uDC00\uD800" /* a reversed pair */ })
        {
            var e = Assert.Throws<ArgumentException>(() => new VectorSettings(1, true, name).DeriveKey([1, 2, 3]));
            Assert.Contains("Name", e.Message);
            Assert.Contains("surrogate", e.Message);
        }
    }

    [Fact]
    public void ReplacementCharacterAndAValidPair_StillWork_AndDiffer()
    {
        var replacement = new VectorSettings(1, true, "\uFFFD").DeriveKey([1]);
        var pair = new VectorSettings(1, true, "\uD83D\uDE00").DeriveKey([1]); // a well-formed pair (an emoji)
        Assert.NotEqual(replacement, pair);
    }

    [Fact]
    public void HandWrittenKeys_NameTheExpression()
    {
        string member = "\uD800";
        var e = Assert.Throws<ArgumentException>(() =>
        {
            var builder = CacheKeyBuilder.Create("test", 1);
            builder.Append(member);
            builder.ToKey();
        });
        Assert.Contains("'member'", e.Message);
    }
}
