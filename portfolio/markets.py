"""The synthetic portfolio's markets: branches, names and the words of hardship cases.

Data for :mod:`portfolio.synthetic`, which draws every borrower from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BranchSpec:
    code: str
    name: str
    country: str
    timezone: str
    currency: str
    languages: tuple[tuple[str, int], ...]  # (language, weight)
    phone_prefixes: tuple[str, ...]  # E.164 prefix; the rest is ``phone_digits`` digits
    phone_digits: int
    share: int  # relative number of borrowers
    principal: tuple[int, int, int]  # lowest, highest, step, in whole currency units
    methods: tuple[tuple[str, str, int], ...]  # (payment method, reference prefix, weight)
    people: str  # key of NAMES
    places: tuple[str, ...]
    payment_instructions: dict[str, Any]


# Given names and family names per market, space-separated (none contains a space).
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ke": (
        tuple(
            "Amina Wanjiru Achieng Njeri Akinyi Fatuma Mercy Grace Zawadi Halima Brian Otieno "
            "Kamau Mwangi Omondi Juma Kipchoge Baraka Wekesa Mutua Esther Nekesa Chebet "
            "Wairimu".split()
        ),
        tuple(
            "Wanjiku Otieno Kamau Mwangi Odhiambo Njoroge Kariuki Ochieng Mutua Kiprotich "
            "Wambui Atieno Hassan Omar Chege Nyambura Were Barasa Kilonzo Muthoni".split()
        ),
    ),
    "sn": (
        tuple(
            "Awa Fatou Aminata Mariama Khady Ndeye Aïssatou Coumba Moussa Mamadou Ibrahima "
            "Cheikh Ousmane Abdoulaye Astou Binta Seynabou Modou".split()
        ),
        tuple(
            "Diop Ndiaye Fall Sow Sarr Faye Gueye Ba Diallo Mbaye Cissé Thiam Niang Seck Kane "
            "Diouf".split()
        ),
    ),
    "ci": (
        tuple(
            "Adjoua Affoué Akissi Aya Mariam Awa Koffi Kouassi Yao Konan Seydou Drissa "
            "Salimata Rokia Brou N'Guessan".split()
        ),
        tuple(
            "Kouamé Koné Ouattara Traoré Yao Kouadio Bamba Coulibaly Touré Diabaté N'Dri Aka "
            "Gnagne Soro".split()
        ),
    ),
    "mx": (
        tuple(
            "María Guadalupe Juana Verónica Rosa Leticia Patricia Alejandra José Juan Miguel "
            "Francisco Luis Carmen Elena Araceli Jesús Marisol".split()
        ),
        tuple(
            "Hernández García Martínez López González Pérez Rodríguez Sánchez Ramírez Cruz "
            "Flores Gómez Morales Vázquez Reyes Jiménez".split()
        ),
    ),
}

_MPESA = {"provider": "M-Pesa", "type": "paybill", "number": "522533"}
BRANCHES: tuple[BranchSpec, ...] = (
    BranchSpec(
        "KE-NBO",
        "Nairobi Gikomba",
        "KE",
        "Africa/Nairobi",
        "KES",
        (("sw", 55), ("en", 45)),
        ("+25471", "+25472"),
        7,
        22,
        (5000, 80000, 500),
        (("mobile_money", "MP", 90), ("agent", "AG", 10)),
        "ke",
        ("Gikomba market hall", "St. Peter's church hall", "Kamukunji grounds"),
        {
            "mobile_money": [
                _MPESA,
                {"provider": "Airtel Money", "type": "paybill", "number": "400200"},
            ],
            "bank": {"name": "Equity Bank", "account": "0170299887766", "branch": "Gikomba"},
            "agents": [{"name": "Mama Njeri Shop", "location": "Gikomba, stall 14"}],
        },
    ),
    BranchSpec(
        "KE-KSM",
        "Kisumu Kibuye",
        "KE",
        "Africa/Nairobi",
        "KES",
        (("sw", 60), ("en", 40)),
        ("+25474",),
        7,
        10,
        (5000, 60000, 500),
        (("mobile_money", "MP", 92), ("agent", "AG", 8)),
        "ke",
        ("Kibuye market", "Nyalenda social hall"),
        {
            "mobile_money": [_MPESA],
            "bank": None,
            "agents": [{"name": "Kibuye Agency", "location": "Kibuye market gate"}],
        },
    ),
    BranchSpec(
        "KE-MSA",
        "Mombasa Majengo",
        "KE",
        "Africa/Nairobi",
        "KES",
        (("sw", 70), ("en", 30)),
        ("+25479",),
        7,
        10,
        (5000, 70000, 500),
        (("mobile_money", "MP", 88), ("agent", "AG", 12)),
        "ke",
        ("Majengo mosque hall", "Mwembe Tayari grounds"),
        {
            "mobile_money": [{"provider": "M-Pesa", "type": "till", "number": "881234"}],
            "bank": None,
            "agents": [{"name": "Majengo Traders", "location": "Majengo road"}],
        },
    ),
    BranchSpec(
        "SN-DKR",
        "Dakar Médina",
        "SN",
        "Africa/Dakar",
        "XOF",
        (("fr", 100),),
        ("+22176", "+22178"),
        7,
        14,
        (50000, 750000, 5000),
        (("mobile_money", "WV", 70), ("mobile_money", "OM", 25), ("cash", "CA", 5)),
        "sn",
        ("Marché Tilène", "Foyer des femmes de la Médina"),
        {
            "mobile_money": [
                {"provider": "Wave", "type": "merchant", "number": "KOPA-DKR"},
                {"provider": "Orange Money", "type": "merchant", "number": "221001"},
            ],
            "bank": None,
            "agents": [{"name": "Agence Médina", "location": "Rue 11 x 22"}],
        },
    ),
    BranchSpec(
        "SN-THS",
        "Thiès Centre",
        "SN",
        "Africa/Dakar",
        "XOF",
        (("fr", 100),),
        ("+22170",),
        7,
        6,
        (50000, 500000, 5000),
        (("mobile_money", "WV", 65), ("mobile_money", "OM", 30), ("cash", "CA", 5)),
        "sn",
        ("Marché central de Thiès",),
        {
            "mobile_money": [{"provider": "Wave", "type": "merchant", "number": "KOPA-THS"}],
            "bank": None,
            "agents": [{"name": "Agence Thiès", "location": "Avenue Léopold Senghor"}],
        },
    ),
    BranchSpec(
        "CI-ABJ",
        "Abidjan Adjamé",
        "CI",
        "Africa/Abidjan",
        "XOF",
        (("fr", 100),),
        ("+22507", "+22505"),
        8,
        12,
        (50000, 800000, 5000),
        (("mobile_money", "OM", 50), ("mobile_money", "WV", 35), ("agent", "AG", 15)),
        "ci",
        ("Marché d'Adjamé", "Salle paroissiale Saint-Michel"),
        {
            "mobile_money": [
                {"provider": "Orange Money", "type": "merchant", "number": "0707070707"},
                {"provider": "Wave", "type": "merchant", "number": "KOPA-ABJ"},
            ],
            "bank": {
                "name": "Société Générale Côte d'Ivoire",
                "account": "CI008 01234 000123456789 12",
            },
            "agents": [{"name": "Agence Adjamé Liberté", "location": "Adjamé, près de la gare"}],
        },
    ),
    BranchSpec(
        "MX-IZT",
        "Iztapalapa",
        "MX",
        "America/Mexico_City",
        "MXN",
        (("es", 100),),
        ("+52556", "+52558"),
        7,
        16,
        (3000, 40000, 500),
        (("bank", "SPEI", 45), ("agent", "OXXO", 50), ("cash", "CA", 5)),
        "mx",
        ("Mercado de Iztapalapa", "Casa de cultura"),
        {
            "mobile_money": [],
            "bank": {"name": "BBVA México", "method": "SPEI", "account": "012180001234567897"},
            "agents": [{"name": "OXXO", "location": "Cualquier tienda OXXO con tu referencia"}],
        },
    ),
    BranchSpec(
        "MX-PUE",
        "Puebla Centro",
        "MX",
        "America/Mexico_City",
        "MXN",
        (("es", 100),),
        ("+52222",),
        7,
        10,
        (3000, 35000, 500),
        (("bank", "SPEI", 40), ("agent", "OXXO", 55), ("cash", "CA", 5)),
        "mx",
        ("Mercado 5 de Mayo",),
        {
            "mobile_money": [],
            "bank": {"name": "Banorte", "method": "SPEI", "account": "072650001234567891"},
            "agents": [{"name": "OXXO", "location": "Cualquier tienda OXXO con tu referencia"}],
        },
    ),
)

# The borrower's own words in a few hardship cases: data, as a borrower would type it.
HARDSHIP_WORDS = {
    "sw": ("Nimeugua na sina kazi wiki hii", "Biashara imeshuka sana mwezi huu"),
    "en": ("My shop was flooded and I lost my stock", "I was sick for two weeks"),
    "fr": ("Mon commerce a brûlé au marché", "Mon mari est malade, je dois le soigner"),
    "es": ("Me robaron la mercancía", "Estuve hospitalizada dos semanas"),
}
HARDSHIP_CATEGORIES = ("illness", "business_loss", "family", "disaster")
RELIEFS = ("more_time", "smaller_installments", "pause")
