"""The registry of downloadable reference data: where each file comes from, its checksum, its terms.

Every entry is pinned: GitHub files by commit (the abbreviated commits recorded when the files were
collected; GitHub resolves them), PyPI files by ``package==version`` and the file's path inside the
source distribution. The sha256 of the file itself is checked after every download or import, so a
moved tag or a changed archive can never slip a different file into the cache.

Licences differ: the AHBA matrices are Allen Institute data (non-commercial use, cite Hawrylycz et
al. 2012), some entries come from repositories without a licence file. graymatter never ships
these files; :func:`graymatter.datasets.fetchers.fetch` downloads them for the user, who accepts
their terms.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resource", "REGISTRY", "github_url", "pypi_url"]

_AHBA_TERMS = ("AHBA data under the Allen Institute terms of use (non-commercial; "
               "https://alleninstitute.org/legal/terms-use/)")
_AHBA_CITE = ("Hawrylycz MJ et al. (2012) An anatomically comprehensive atlas of the adult human "
              "brain transcriptome. Nature 489:391-399")
_ENIGMA_CITE = ("Lariviere S et al. (2021) The ENIGMA Toolbox: multiscale neural contextualization "
                "of multisite neuroimaging datasets. Nat Methods 18:698-700")
_ITX_CITE = ("Martins D et al. (2021) imaging-transcriptomics: second-generation open-source "
             "software for imaging transcriptomics. Imaging Neuroscience / bioRxiv "
             "10.1101/2021.06.21.449241")


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    Attributes
    ----------
    name : str
        Registry key, used on the command line (``graymatter fetch NAME``).
    filename : str
        Name of the file in the cache (and the name searched for by ``fetch(..., from_dir=)``).
    url : str
        ``https://`` URL of the file at a pinned commit, or ``pypi:PACKAGE==VERSION`` for a file
        inside a PyPI source distribution (see ``member``).
    sha256 : str
        64 hex digits of the file's bytes.
    size : int
        File size in bytes.
    licence : str
    citation : str
    description : str
    member : str or None
        For ``pypi:`` URLs, the file's path inside the sdist (matched as a path suffix).
    aliases : tuple of str
        Other file names the same bytes go by (the upstream name), also searched by ``from_dir``.
    """

    name: str
    filename: str
    url: str
    sha256: str
    size: int
    licence: str
    citation: str
    description: str
    member: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def is_pypi(self) -> bool:
        """True when the file lives inside a PyPI source distribution."""
        return self.url.startswith("pypi:")

    def to_dict(self) -> dict:
        """JSON-able description (for ``graymatter fetch --list`` and provenance)."""
        return {"name": self.name, "filename": self.filename, "url": self.url,
                "member": self.member, "sha256": self.sha256, "size": self.size,
                "licence": self.licence, "citation": self.citation,
                "description": self.description}


def github_url(repo: str, commit: str, path: str) -> str:
    """Raw URL of ``path`` in GitHub repository ``repo`` at ``commit``.

    Examples
    --------
    >>> github_url("owner/repo", "8c9df6e0", "a/b.csv")
    'https://github.com/owner/repo/raw/8c9df6e0/a/b.csv'
    """
    return f"https://github.com/{repo}/raw/{commit}/{path}"


def pypi_url(requirement: str) -> str:
    """``pypi:`` pseudo-URL of a pinned source distribution (``package==version``)."""
    if "==" not in requirement:
        raise ValueError(f"pin an exact version, e.g. 'imaging-transcriptomics==1.1.15', got "
                         f"{requirement!r}")
    return f"pypi:{requirement}"


_ENIGMA_EXTRA = ("saratheriver/enigma-extra", "8c9df6e0")
_ENIGMA = ("MICA-MNI/ENIGMA", "d66a7ef3")
_ITX = "imaging-transcriptomics==1.1.15"


def _entries() -> list[Resource]:
    ahba = [
        Resource("ahba-dk83", "ahba_dk83_15633genes.csv", pypi_url(_ITX),
                 "350dda8555e347fc0465c78fe5d02e1a66ca1496c99c4e240c36868c410d94ea", 15531105,
                 "GPL-3.0 (imaging-transcriptomics); " + _AHBA_TERMS, _AHBA_CITE + "; " + _ITX_CITE,
                 "AHBA expression, 83 Desikan-Killiany regions (41 left, 41 right, brainstem) x "
                 "15,633 genes, scaled robust sigmoid (0..1); columns label, Region, genes",
                 member="imaging_transcriptomics/data/atlases/DK/atlas-DK_gene_expression_data.csv",
                 aliases=("atlas-DK_gene_expression_data.csv",)),
        Resource("ahba-glasser360-ds06", "ahba_glasser360_ds0.6.csv",
                 github_url(*_ENIGMA_EXTRA, "ahba/allgenes_stable_r0.6_glasser_360.csv"),
                 "bec9add52583de0813b3927e270561c4b66b5f94ef06f1e338a78fdef39d3d29", 1662057,
                 "no licence file upstream; " + _AHBA_TERMS, _AHBA_CITE + "; " + _ENIGMA_CITE,
                 "AHBA expression, 360 HCP-MMP1 regions (L then R) + 14 subcortical x 268 genes "
                 "with differential stability >= 0.6 (some regions NaN)",
                 aliases=("allgenes_stable_r0.6_glasser_360.csv",)),
        Resource("ahba-dk82-ds06", "ahba_dk82_ds0.6.csv",
                 github_url(*_ENIGMA_EXTRA, "ahba/allgenes_stable_r0.6.csv"),
                 "769d0c3d3a0184b2617585084d62965ef5a8201fa4011166503e5759f91af4bb", 2538016,
                 "no licence file upstream; " + _AHBA_TERMS, _AHBA_CITE + "; " + _ENIGMA_CITE,
                 "AHBA expression, 68 DK cortical + 14 subcortical regions x 1,645 genes with "
                 "differential stability >= 0.6 (R_frontalpole, R_temporalpole NaN)",
                 aliases=("allgenes_stable_r0.6.csv",)),
    ]
    genesets = [
        Resource("celltypes-seidlitz2020", "celltypes_seidlitz2020_PSP.csv",
                 github_url("jms290/PolySyn_MSNs", "9bb6e778", "Data/AHBA/celltypes_PSP.csv"),
                 "a60c4b212077b80575f2411b0648a30d76fb94a488c57436337b67154ca7b915", 106431,
                 "no licence file upstream; gene lists from a CC BY paper",
                 "Seidlitz J et al. (2020) Transcriptomic and cellular decoding of regional brain "
                 "vulnerability to neurogenetic disorders. Nat Commun 11:3358",
                 "gene,class table of 7 cell classes (Astro, Endo, Micro, Neuro-Ex, Neuro-In, "
                 "Oligo, OPC)", aliases=("celltypes_PSP.csv",)),
        Resource("genesets-pooled", "geneset_Pooled.gmt", pypi_url(_ITX),
                 "51f7af62abde62afedc212d6b796efe6ae46cb4570678b530a8ed56d82e833f1", 35313,
                 "GPL-3.0 (imaging-transcriptomics)", _ITX_CITE,
                 "7 pooled cell classes as GMT, restricted to AHBA genes",
                 member="geneset_Pooled.gmt"),
        Resource("genesets-lake", "geneset_LAKE.gmt", pypi_url(_ITX),
                 "d82f252f8085b9c2b153e7dac83e002af77022edfa473f48d4677e16e61b191f", 52182,
                 "GPL-3.0 (imaging-transcriptomics)",
                 "Lake BB et al. (2018) Integrative single-cell analysis of transcriptional and "
                 "epigenetic states in the human adult brain. Nat Biotechnol 36:70-80; " + _ITX_CITE,
                 "30 Lake 2018 cell types as GMT", member="geneset_LAKE.gmt"),
        Resource("go-bp-2021", "GO_Biological_Process_2021.gmt",
                 github_url("zqfang/GSEApy", "08cb2b68",
                            "tests/extdata/enrichr.GO_Biological_Process_2021.gmt"),
                 "5987ce789053fdd5533393cd65b9abdb5e08e4fade7b0625a1fe234a1207eea4", 1531081,
                 "BSD-3-Clause (GSEApy); GO data CC BY 4.0",
                 "Gene Ontology Consortium (2021) Nucleic Acids Res 49:D325-D334; Kuleshov MV et "
                 "al. (2016) Enrichr. Nucleic Acids Res 44:W90-W97",
                 "6,036 GO biological-process gene sets (Enrichr 2021), human symbols",
                 aliases=("enrichr.GO_Biological_Process_2021.gmt",)),
    ]
    surfaces = [
        Resource("hcp-mmp1-centroids", "sphere_HCP_centroids.txt",
                 github_url("frantisekvasa/rotate_parcellation", "65673ea7", "sphere_HCP.txt"),
                 "c27036873c84a060c79ff01174c4f3dcefce8e4af126d15c605a45f36d46800f", 11518,
                 "MIT",
                 "Vasa F et al. (2018) Adolescent tuning of association cortex in human structural "
                 "brain networks. Cereb Cortex 28:281-294",
                 "HCP-MMP1 parcel centroids on the fsaverage sphere, 360 x 3 (left then right)",
                 aliases=("sphere_HCP.txt",)),
    ]
    sizes = {"fsa5_sphere_lh.gii": ("3230f479bf356a0ec0f239b8b8c9dcb562061074e8b3f6d751ab4dea904088d6", 204387),
             "fsa5_sphere_rh.gii": ("51c48278a3009ad14a2d6a5a20f9fa49d9e3c53917076ab69ddc2cc12130c06e", 204388),
             "fsa5_lh_aparc.annot": ("74d1c2fd5e6b7ca193f06fee45a86f5638f347e38cea5ba27fce9fd69c0056be", 83444),
             "fsa5_rh_aparc.annot": ("ca86b3b0bd5b74e367519dd94157154ae7c61ad128680fcc7b52e1a799e34e9f", 83444),
             "fsa5_lh_glasser_360.annot": ("ed3fabf9775e85ddcd7cac1d74db8e6d52fb07255e25b8571f71a328976eb93c", 87171),
             "fsa5_rh_glasser_360.annot": ("b1d7e318529c5561cdadff6017134b8a71c8f918b224077181de5bcc801f0326", 87171)}
    for hemi in ("lh", "rh"):
        fname = f"fsa5_sphere_{hemi}.gii"
        surfaces.append(Resource(
            f"fsaverage5-sphere-{hemi}", fname,
            github_url(*_ENIGMA, f"enigmatoolbox/datasets/surfaces/{fname}"), *sizes[fname],
            "BSD-3-Clause (ENIGMA Toolbox); FreeSurfer fsaverage", _ENIGMA_CITE,
            f"fsaverage5 sphere, {'left' if hemi == 'lh' else 'right'} hemisphere (10,242 vertices)"))
        for atlas, key, text in (("aparc", "dk", "Desikan-Killiany (aparc)"),
                                 ("glasser_360", "glasser360", "HCP-MMP1 (Glasser 360)")):
            fname = f"fsa5_{hemi}_{atlas}.annot"
            surfaces.append(Resource(
                f"fsaverage5-{key}-annot-{hemi}", fname,
                github_url(*_ENIGMA, f"enigmatoolbox/datasets/parcellations/{fname}"),
                *sizes[fname], "BSD-3-Clause (ENIGMA Toolbox)", _ENIGMA_CITE,
                f"{text} annotation on fsaverage5, {'left' if hemi == 'lh' else 'right'} "
                "hemisphere (FreeSurfer .annot)"))
    return ahba + genesets + surfaces


#: All downloadable files by name.
REGISTRY: dict[str, Resource] = {r.name: r for r in _entries()}
