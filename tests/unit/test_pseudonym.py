from shared.pseudonym import identity_basis, pseudonymise

KEY = b"k" * 32


def basis(**kw):
    fields = {"name": None, "birth_year": None, "postcode": None, "email": None, "phone": None} | kw
    return identity_basis(**fields)


def test_name_birth_year_and_postcode_are_normalised():
    a = basis(name="Anna de Vries", birth_year=1961, postcode="3831AB")
    b = basis(name="  ANNA DE VRIÉS ", birth_year=1961, postcode="3831 ab")
    assert a == b
    assert pseudonymise(KEY, a) == pseudonymise(KEY, b)


def test_email_then_phone_are_fallbacks():
    assert basis(name="Anna", email="Anna@Example.nl ") == "e:anna@example.nl"
    assert basis(phone="06-12345678") == basis(phone="+31 6 12345678")
    assert basis(name="Anna") is None


def test_the_pseudonym_depends_on_the_key():
    b = basis(email="anna@example.nl")
    assert pseudonymise(KEY, b) != pseudonymise(b"other-key", b)
    assert len(pseudonymise(KEY, b)) == 64
